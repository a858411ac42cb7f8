"""A small client for udl's HTTP gateway (udl serve with [gateway]), on httpx.

Every call carries the calling service's credential (a service token here; a client
certificate works too, through httpx's `cert=`), the end user's JWT and the purpose of use.
Entity names and field names are checked against the gateway's OpenAPI document before a
request leaves, so a typo fails here rather than as a 400. Errors come back as `UdlError`
carrying the problem+json body, which never holds a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import httpx

Record = dict[str, Any]
Filter = dict[str, Any]


class UdlError(Exception):
    """A refusal or failure: HTTP status, udl's error kind and its detail."""

    def __init__(self, status: int, kind: str, detail: str, retry_after: Optional[float]):
        super().__init__(f"{status} {kind}: {detail}")
        self.status = status
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after


@dataclass
class Page:
    """One page of a list: records and the cursor of the next page (None on the last)."""

    items: list[Record]
    next: Optional[str]


@dataclass
class Caller:
    """Who is asking and why: the end user's token, the purpose, and optionally the patient,
    a role (when the token has several) and a request id."""

    token: str
    purpose: str
    patient: Optional[str] = None
    role: Optional[str] = None
    request_id: Optional[str] = None

    def headers(self) -> dict[str, str]:
        h = {"authorization": f"Bearer {self.token}", "x-udl-purpose": self.purpose}
        if self.patient:
            h["x-udl-patient"] = self.patient
        if self.role:
            h["x-udl-role"] = self.role
        if self.request_id:
            h["x-request-id"] = self.request_id
        return h


@dataclass
class Schema:
    """An entity as the OpenAPI document describes it."""

    name: str
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sensitivity(self, name: str) -> str:
        return self.fields[name].get("x-udl-sensitivity", "internal")


class UdlClient:
    """The gateway at `base_url`, called as the service holding `service_token`."""

    def __init__(self, base_url: str, service_token: Optional[str] = None, **httpx_options: Any):
        headers = {"x-udl-service-token": service_token} if service_token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=30.0, **httpx_options)
        self._schemas: Optional[dict[str, Schema]] = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "UdlClient":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # The document the gateway generates from its registry.
    def schemas(self) -> dict[str, Schema]:
        if self._schemas is None:
            doc = self._send("GET", "/v1/openapi.json", None, None)
            self._schemas = {
                name: Schema(name, schema.get("properties", {}))
                for name, schema in doc["components"]["schemas"].items()
                if "x-udl-store" in schema
            }
        return self._schemas

    def schema(self, entity: str) -> Schema:
        try:
            return self.schemas()[entity]
        except KeyError:
            raise ValueError(f"the gateway serves no entity {entity!r}") from None

    def _check_fields(self, entity: str, names: Any) -> None:
        known = self.schema(entity).fields
        unknown = [n for n in names if n not in known and not str(n).startswith("$")]
        if unknown:
            raise ValueError(f"{entity} has no field(s) {', '.join(map(str, unknown))}")

    def _send(self, method: str, path: str, caller: Optional[Caller], body: Any,
              extra: Optional[dict[str, str]] = None) -> Any:
        headers = caller.headers() if caller else {}
        headers.update(extra or {})
        response = self._http.request(method, path, headers=headers, json=body)
        if response.status_code >= 400:
            problem = response.json() if response.content else {}
            retry = response.headers.get("retry-after")
            raise UdlError(response.status_code, problem.get("kind", "error"),
                           problem.get("detail", response.reason_phrase),
                           float(retry) if retry else None)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # Entities.
    def create(self, caller: Caller, entity: str, record: Record) -> Any:
        self._check_fields(entity, record)
        return self._send("POST", f"/v1/{entity}", caller, record)["id"]

    def get(self, caller: Caller, entity: str, id: Any) -> Optional[Record]:
        try:
            return self._send("GET", f"/v1/{entity}/{id}", caller, None)
        except UdlError as e:
            if e.status == 404:
                return None
            raise

    def update(self, caller: Caller, entity: str, id: Any, changes: Record,
               expect_version: Optional[int] = None) -> None:
        self._check_fields(entity, changes)
        extra = {"if-match": f'"{expect_version}"'} if expect_version is not None else None
        self._send("PATCH", f"/v1/{entity}/{id}", caller, changes, extra)

    def replace(self, caller: Caller, entity: str, id: Any, record: Record,
                expect_version: Optional[int] = None) -> None:
        self._check_fields(entity, record)
        extra = {"if-match": f'"{expect_version}"'} if expect_version is not None else None
        self._send("PUT", f"/v1/{entity}/{id}", caller, record, extra)

    def delete(self, caller: Caller, entity: str, id: Any) -> None:
        self._send("DELETE", f"/v1/{entity}/{id}", caller, None)

    def list(self, caller: Caller, entity: str, filter: Optional[Filter] = None,
             sort: Optional[list[str]] = None, limit: int = 50, cursor: Optional[str] = None) -> Page:
        self._check_fields(entity, (filter or {}).keys())
        self._check_fields(entity, [s.lstrip("-") for s in sort or []])
        body = {"filter": filter, "sort": sort, "limit": limit, "cursor": cursor}
        page = self._send("POST", f"/v1/{entity}:list", caller, body)
        return Page(page["items"], page["next"])

    def iterate(self, caller: Caller, entity: str, filter: Optional[Filter] = None,
                sort: Optional[list[str]] = None, page_size: int = 100) -> Iterator[Record]:
        cursor = None
        while True:
            page = self.list(caller, entity, filter, sort, page_size, cursor)
            yield from page.items
            if page.next is None:
                return
            cursor = page.next

    def count(self, caller: Caller, entity: str, filter: Optional[Filter] = None) -> int:
        self._check_fields(entity, (filter or {}).keys())
        return self._send("POST", f"/v1/{entity}:count", caller, {"filter": filter})["count"]

    def nearest(self, caller: Caller, entity: str, field_name: str, vector: list[float], k: int = 10,
                filter: Optional[Filter] = None) -> list[tuple[Record, float]]:
        self._check_fields(entity, [field_name, *(filter or {}).keys()])
        body = {"field": field_name, "vector": vector, "k": k, "filter": filter}
        found = self._send("POST", f"/v1/{entity}:nearest", caller, body)["items"]
        return [(item["record"], item["score"]) for item in found]

    # Sessions and tokens.
    def create_session(self, caller: Caller, data: Optional[dict[str, Any]] = None) -> str:
        return self._send("POST", "/v1/sessions", caller, {"data": data or {}})["id"]

    def session(self, caller: Caller, session_id: str) -> Optional[dict[str, Any]]:
        try:
            return self._send("GET", f"/v1/sessions/{session_id}", caller, None)
        except UdlError as e:
            if e.status == 404:
                return None
            raise

    def end_session(self, caller: Caller, session_id: str) -> None:
        self._send("DELETE", f"/v1/sessions/{session_id}", caller, None)

    def revoke_token(self, caller: Caller, jti: str, exp: int) -> None:
        self._send("POST", "/v1/revoked-tokens", caller, {"jti": jti, "exp": exp})

    # Rate limits, caches, analytics.
    def check_rate(self, caller: Caller, subject: str, limit: int, period_ms: int) -> tuple[bool, int]:
        body = {"subject": subject, "limit": limit, "period_ms": period_ms}
        answer = self._send("POST", "/v1/rate-limits/check", caller, body)
        return answer["allowed"], answer["retry_after_ms"]

    def cached_embeddings(self, caller: Caller, model: str, dimension: int,
                          texts: list[str]) -> list[Optional[list[float]]]:
        body = {"model": model, "dimension": dimension, "texts": texts}
        return self._send("POST", "/v1/embedding-cache/get", caller, body)["vectors"]

    def cache_embeddings(self, caller: Caller, model: str, entries: dict[str, list[float]]) -> None:
        body = {"model": model, "entries": [{"text": t, "vector": v} for t, v in entries.items()]}
        self._send("POST", "/v1/embedding-cache/put", caller, body)

    def cached_generation(self, caller: Caller, model: str, prompt: str,
                          params: dict[str, Any]) -> Optional[str]:
        body = {"model": model, "prompt": prompt, "params": params}
        return self._send("POST", "/v1/generation-cache/get", caller, body)["response"]

    def cache_generation(self, caller: Caller, model: str, prompt: str, params: dict[str, Any],
                         response: str, classification: str) -> bool:
        body = {"model": model, "prompt": prompt, "params": params, "response": response,
                "classification": classification}
        return self._send("POST", "/v1/generation-cache/put", caller, body)["stored"]

    def track(self, caller: Caller, stream: str, events: list[dict[str, Any]]) -> str:
        body = {"stream": stream, "events": events}
        return self._send("POST", "/v1/analytics/events", caller, body)["delivery"]

    def record_points(self, caller: Caller, series: str, points: list[dict[str, Any]]) -> str:
        body = {"series": series, "points": points}
        return self._send("POST", "/v1/analytics/points", caller, body)["delivery"]
