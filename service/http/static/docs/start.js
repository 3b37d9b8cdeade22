// Starts Swagger UI on /docs (service/http/templates/swagger_ui.html): the
// settings come from the page's data attributes, so the page needs no inline script.
"use strict";
window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui-container");
  var config = JSON.parse(container.dataset.config || "{}");
  config.url = container.dataset.specUrl;
  config.dom_id = "#swagger-ui-container";
  window.ui = SwaggerUIBundle(config);
});
