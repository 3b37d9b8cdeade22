"""The keyring: patients' personal fields sealed under a data key per programme.

Envelope encryption with AES-256-GCM (`cryptography`'s AESGCM):

- each programme has its own random 256-bit data key, made just before its
  first event is stored, kept in `data_keys` wrapped (AES-GCM) by the
  operator's key-encryption key (KEK, TRACTION_DATA_KEY or a key file), never
  beside the plaintext and never in the clear;
- a personal field is sealed as `sealed:v1:<event id>:` + base64url(nonce ||
  ciphertext), its associated data the programme id, the event id and the
  field's name: a ciphertext moved to another event, programme or field fails
  to open (the event id is named in the value so that a read model's copy of a
  sealed patient_ref can be opened for a read without its event);
- erasure deletes the programme's row: nothing can open its fields again
  (a backup taken before still holds the row, wrapped by the KEK of then:
  `traction keys rotate` and destroying the old KEK end that, OPERATIONS.md);
- the KEK is checked at start against a check value kept in the store: a
  wrong key is refused before anything is written.

A store made for development only (`traction db init --development-keys`)
keeps its KEK in its own `key_settings`: no protection at rest, and every
start says so.

This module implements the domain's `Seal` port (domain/personal.py); the
mapper calls it (domain/versions.py), so nothing else sees a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.personal import ERASED, SealBroken
from service.storage.database import Database

#: What every sealed value starts with (the format's version in it).
SEALED_PREFIX = "sealed:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32
#: Unwrapped data keys a process keeps (the programmes it used most recently; the
#: oldest first out). A 1 GB bulk upload of new programmes fills it by 1.2 million lines.
KEYS_KEPT = 20_000

#: key_settings rows.
KEK_CHECK = "kek_check"
LOOKUP_KEY = "patient_lookup_key"
DEVELOPMENT_KEK = "development_kek"

#: A fixed text the KEK's check value is computed over (an HMAC: the check says
#: nothing about the key).
_CHECK_MESSAGE = b"traction-ledger: key-encryption key check"


class KeyRefused(Exception):
    """The service cannot use the configured KEK with this store: the message says why."""


class KeyRotated(KeyRefused):
    """The store's KEK was rotated while this process ran with the old one."""


def generate_kek() -> str:
    """A new random KEK, as TRACTION_DATA_KEY takes it (base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def parse_kek(text: str) -> bytes:
    """A KEK from its base64 text; ValueError unless it is 32 bytes."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode() + b"==")
    except (ValueError, TypeError):
        raise ValueError("not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{len(key)} bytes, not {KEY_BYTES}")
    return key


def kek_check(kek: bytes) -> str:
    return hmac.new(kek, _CHECK_MESSAGE, hashlib.sha256).hexdigest()


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


def _wrap(kek: bytes, key: bytes, purpose: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    return _b64(nonce + AESGCM(kek).encrypt(nonce, key, purpose.encode()))


def _unwrap(kek: bytes, wrapped: str, purpose: str) -> bytes:
    blob = _unb64(wrapped)
    return AESGCM(kek).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], purpose.encode())


def _as_uuid(value: Any) -> UUID:
    """An id as a UUID: the callers hand a UUID (parsed again only if not one) or its text."""
    return value if type(value) is UUID else UUID(str(value))


def _associated(programme_id: Any, event_id: Any, name: str) -> bytes:
    return f"{_as_uuid(programme_id)}|{_as_uuid(event_id)}|{name}".encode()


class KeySettings:
    """What a store knows of its keys (`key_settings`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def read(self) -> dict[str, str]:
        with self.database.transaction(write=False) as cursor:
            rows = cursor.execute("SELECT name, value FROM key_settings").fetchall()
        return {row["name"]: row["value"] for row in rows}

    def add(self, name: str, value: str) -> str:
        """Set `name` unless set already; the value it holds afterwards."""
        with self.database.transaction() as cursor:
            cursor.execute("INSERT INTO key_settings (name, value) VALUES (%s, %s)"
                           " ON CONFLICT (name) DO NOTHING", (name, value))
            row = cursor.execute("SELECT value FROM key_settings WHERE name = %s",
                                 (name,)).fetchone()
        assert row is not None
        return str(row["value"])


def development_store(settings: KeySettings) -> bool:
    """Mark a new store as one for development, its KEK kept in the store itself;
    False if an operator's KEK wraps its keys already."""
    found = settings.read()
    if DEVELOPMENT_KEK in found:
        return True
    if KEK_CHECK in found:
        return False
    settings.add(DEVELOPMENT_KEK, generate_kek())
    return True


class Keyring:
    """Seals and opens personal fields with each programme's data key (domain.personal.Seal)."""

    def __init__(self, database: Database, kek: bytes, lookup_key: bytes, *,
                 development: bool = False) -> None:
        self.database = database
        self._kek = kek
        self._check = kek_check(kek)
        self._lookup_key = lookup_key
        #: The store keeps its own KEK: for development only.
        self.development = development
        # Unwrapped data keys of this process, the most recently made or read
        # KEYS_KEPT of them. Safe to keep: every read of a programme sees its
        # erasure event, and shows ERASED from then on (domain/application.py),
        # and an erased programme records nothing more, whatever key this
        # process still holds (another process's erasure included).
        # The keys' bytes, not AESGCM objects: each of those holds an OpenSSL
        # context of about 2.6 KB, so KEYS_KEPT of them took 52 MB of a worker
        # (a 1 GB bulk upload's peak RSS grew 1.32x over a 64 MB one's); one is
        # made per seal or open instead, for about 1 µs.
        self._keys: dict[UUID, bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def unlock(cls, database: Database, kek: bytes | None) -> Keyring:
        """The keyring of the store, with the configured KEK (None: not configured).

        KeyRefused, before anything is written, without a KEK on a store not
        made for development, or with a KEK other than the one the store's
        keys are wrapped by."""
        found = KeySettings(database).read()
        development = DEVELOPMENT_KEK in found
        if kek is None:
            if not development:
                raise KeyRefused(
                    "no key-encryption key: set TRACTION_DATA_KEY (or TRACTION_DATA_KEY_FILE) "
                    "to the store's key; `traction keys generate` prints a new one for a new "
                    "store")
            kek = parse_kek(found[DEVELOPMENT_KEK])
        check = found.get(KEK_CHECK)
        if check is not None and not hmac.compare_digest(check, kek_check(kek)):
            raise KeyRefused(
                "TRACTION_DATA_KEY is not the key-encryption key this store's data keys are "
                "wrapped by (its check value differs); nothing was written. Use the store's "
                "key, or restore the key file it was created with")
        settings = KeySettings(database)
        if check is None:
            settings.add(KEK_CHECK, kek_check(kek))
        wrapped = found.get(LOOKUP_KEY) or settings.add(
            LOOKUP_KEY, _wrap(kek, os.urandom(KEY_BYTES), LOOKUP_KEY))
        return cls(database, kek, _unwrap(kek, wrapped, LOOKUP_KEY), development=development)

    # ---- the Seal port ----------------------------------------------------

    def patient_hash(self, clinic_id: str, patient_ref: str) -> str:
        """A keyed hash of a patient at a clinic: finds their programmes, shows no one."""
        message = f"{clinic_id}\x00{patient_ref}".encode()
        # hmac.digest: the one-shot form of hmac.new(...).hexdigest(), the same value.
        return hmac.digest(self._lookup_key, message, "sha256").hex()

    def register(self, programme_id: UUID, clinic_id: str, patient_ref: str) -> None:
        self.register_all([(programme_id, clinic_id, patient_ref)])

    def register_all(self, patients: Sequence[tuple[UUID, str, str]]) -> None:
        new: dict[UUID, tuple[str, str]] = {}
        for programme_id, clinic_id, patient_ref in patients:
            programme_id = _as_uuid(programme_id)
            if programme_id not in self._keys:
                new.setdefault(programme_id, (clinic_id, patient_ref))
        if not new:
            return
        ours: list[tuple[UUID, bytes]] = []
        # One transaction (one commit) for all of them: a commit per programme
        # cost bulk ingest more than everything else it does for a new programme.
        with self.database.transaction() as cursor:
            # In the programmes' order: two writers making keys of the same
            # programmes (two bulk uploads at once that start them, in different
            # orders) then wait for each other's rows in one order. In the order
            # given, each could hold a row the other waits for: PostgreSQL's
            # deadlock detector failed one of them.
            for programme_id, (clinic_id, patient_ref) in sorted(
                    new.items(), key=lambda item: item[0].int):
                key = os.urandom(KEY_BYTES)
                programme_text = str(programme_id)
                wrapped = _wrap(self._kek, key, programme_text)
                # One statement in the common case: stored only while the store's KEK
                # is still this process's (after `traction keys rotate` this process
                # holds the old one until it restarts: a key wrapped by it now could
                # never be opened), and only if no other writer made this programme's
                # key first.
                stored = cursor.execute(
                    "INSERT INTO data_keys (programme_id, clinic_id, patient_hash, wrapped_key,"
                    " created_at) SELECT %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM"
                    " key_settings WHERE name = %s AND value = %s)"
                    " ON CONFLICT (programme_id) DO NOTHING RETURNING wrapped_key",
                    (programme_text, clinic_id, self.patient_hash(clinic_id, patient_ref),
                     wrapped, datetime.now(UTC).isoformat(), KEK_CHECK, self._check)).fetchone()
                if stored is None:
                    check = cursor.execute("SELECT value FROM key_settings WHERE name = %s",
                                           (KEK_CHECK,)).fetchone()
                    if check is None or check["value"] != self._check:
                        raise KeyRotated("the key-encryption key was rotated: restart this "
                                         "process with the new TRACTION_DATA_KEY")
                    continue  # another writer made it first: read when first needed
                ours.append((programme_id, key))
        # Ours: kept at once, so sealing their first fields reads nothing more.
        for programme_id, key in ours:
            self._keep(programme_id, key)

    def seal(self, programme_id: UUID, event_id: UUID, name: str, value: str) -> str:
        cipher = self._cipher(programme_id)
        if cipher is None:
            raise KeyError(f"programme {programme_id} has no data key (erased?)")
        nonce = os.urandom(NONCE_BYTES)
        sealed = cipher.encrypt(nonce, value.encode(),
                                _associated(programme_id, event_id, name))
        return f"{SEALED_PREFIX}{_as_uuid(event_id).hex}:{_b64(nonce + sealed)}"

    def open(self, programme_id: UUID, event_id: UUID | None, name: str, value: Any) -> Any:
        """As the port says; `event_id` None: the event the value names (a read model's
        copy of a sealed value, which keeps no event id of its own)."""
        if not is_sealed(value):
            return value
        try:
            sealed_in, _, blob_text = value[len(SEALED_PREFIX):].partition(":")
            if event_id is not None and sealed_in != _as_uuid(event_id).hex:
                raise ValueError("sealed in another event")
            blob = _unb64(blob_text)
        except ValueError as error:
            raise SealBroken(f"{name} of event {event_id} is not a sealed value") from error
        cipher = self._cipher(programme_id)
        if cipher is None:
            return ERASED
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                  _associated(programme_id, sealed_in, name)).decode()
        except (InvalidTag, ValueError) as error:
            raise SealBroken(f"{name} of event {event_id} fails authentication") from error

    def forget(self, programme_id: UUID) -> None:
        programme_id = _as_uuid(programme_id)
        with self.database.transaction() as cursor:
            cursor.execute("DELETE FROM data_keys WHERE programme_id = %s", (str(programme_id),))
        with self._lock:
            self._keys.pop(programme_id, None)

    # ---- beyond the port ---------------------------------------------------

    def programmes_of(self, clinic_id: str, patient_ref: str) -> list[UUID]:
        """The programmes of one patient at one clinic whose keys still exist."""
        with self.database.transaction(write=False) as cursor:
            rows = cursor.execute(
                "SELECT programme_id FROM data_keys WHERE clinic_id = %s AND patient_hash = %s"
                " ORDER BY programme_id",
                (clinic_id, self.patient_hash(clinic_id, patient_ref))).fetchall()
        return [UUID(row["programme_id"]) for row in rows]

    def has_key(self, programme_id: UUID) -> bool:
        return self._key(programme_id) is not None

    def rotate(self, new_kek: bytes) -> int:
        """Re-wrap every data key (and the lookup key) under `new_kek`, in one
        transaction; the number of data keys re-wrapped. Afterwards only the new
        KEK opens this store (and backups taken from now on)."""
        with self.database.transaction() as cursor:
            rows = cursor.execute("SELECT programme_id, wrapped_key FROM data_keys").fetchall()
            for row in rows:
                key = _unwrap(self._kek, row["wrapped_key"], row["programme_id"])
                cursor.execute("UPDATE data_keys SET wrapped_key = %s WHERE programme_id = %s",
                               (_wrap(new_kek, key, row["programme_id"]), row["programme_id"]))
            for name, value in ((LOOKUP_KEY, _wrap(new_kek, self._lookup_key, LOOKUP_KEY)),
                                (KEK_CHECK, kek_check(new_kek))):
                cursor.execute("UPDATE key_settings SET value = %s WHERE name = %s",
                               (value, name))
            if self.development:
                # A development store keeps its key: rotating it keeps the new one.
                cursor.execute("UPDATE key_settings SET value = %s WHERE name = %s",
                               (_b64(new_kek), DEVELOPMENT_KEK))
        self._kek = new_kek
        self._check = kek_check(new_kek)
        with self._lock:
            self._keys.clear()
        return len(rows)

    def _cipher(self, programme_id: Any) -> AESGCM | None:
        key = self._key(programme_id)
        return AESGCM(key) if key is not None else None

    def _key(self, programme_id: Any) -> bytes | None:
        programme_id = _as_uuid(programme_id)
        key = self._keys.get(programme_id)
        if key is not None:
            return key
        row = self.database.read_one("SELECT wrapped_key FROM data_keys WHERE programme_id = %s",
                                     (str(programme_id),))
        if row is None:
            return None
        key = _unwrap(self._kek, row["wrapped_key"], str(programme_id))
        self._keep(programme_id, key)
        return key

    def _keep(self, programme_id: UUID, key: bytes) -> None:
        with self._lock:
            self._keys.pop(programme_id, None)  # re-inserted: the newest
            self._keys[programme_id] = key
            while len(self._keys) > KEYS_KEPT:
                del self._keys[next(iter(self._keys))]  # the oldest first out

