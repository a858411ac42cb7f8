"""A Python service using udl through its gateway: a patient's account and consent, a therapy
conversation with PHI, a clinician's read under that consent, a stranger refused, a search
over document chunks, a session and a rate limit. Run against a real `udl serve` by the
examples' test (crates/udl-cli/tests/integration/gateway_clients.rs); every value is fake.

Environment: UDL_GATEWAY_URL, UDL_SERVICE_TOKEN, UDL_PATIENT_ID, UDL_CLINICIAN_ID and the end
users' tokens UDL_PATIENT_TOKEN, UDL_CLINICIAN_TOKEN, UDL_STRANGER_TOKEN (issued by the
platform's auth service; the test stands in for it).
"""

import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../clients/python"))
from udl_client import Caller, UdlClient, UdlError  # noqa: E402

env = os.environ
patient, clinician = env["UDL_PATIENT_ID"], env["UDL_CLINICIAN_ID"]
now = "2026-12-01T10:00:00Z"

with UdlClient(env["UDL_GATEWAY_URL"], env["UDL_SERVICE_TOKEN"]) as udl:
    as_patient = Caller(env["UDL_PATIENT_TOKEN"], "patient_request", patient=patient)
    treating = Caller(env["UDL_CLINICIAN_TOKEN"], "treatment", patient=patient)
    stranger = Caller(env["UDL_STRANGER_TOKEN"], "treatment", patient=patient)
    print("messages are", udl.schema("conversations").sensitivity("messages"))

    for user_id, role in [(patient, "patient"), (clinician, "clinician")]:
        udl.create(as_patient, "users", {
            "id": user_id, "email": f"fake-{user_id}@example.test", "display_name": "Fake Person",
            "role": role, "status": "active", "created_at": now, "updated_at": now, "version": 1})
    udl.create(as_patient, "consent_records", {
        "id": str(uuid.uuid4()), "patient_id": patient, "grantee_id": clinician,
        "grantee_role": None, "purpose": "treatment", "scope": "all", "granted_at": now,
        "expires_at": None, "revoked_at": None, "version": 1})

    note = str(uuid.uuid4())
    udl.create(as_patient, "conversations", {
        "id": note, "patient_id": patient, "title": "fake check-in", "status": "active",
        "messages": [{"role": "patient", "text": "fake: slept badly again", "at": now}],
        "started_at": now, "updated_at": now, "version": 1})
    read = udl.get(treating, "conversations", note)
    assert read is not None and read["messages"][0]["text"] == "fake: slept badly again"
    print("clinician read the conversation, version", read["version"])
    udl.update(treating, "conversations", note, {"status": "closed"}, expect_version=read["version"])
    try:
        udl.update(treating, "conversations", note, {"status": "active"}, expect_version=read["version"])
        sys.exit("a stale version was accepted")
    except UdlError as e:
        assert e.status == 409, e
        print("stale update refused:", e.kind)

    try:
        udl.get(stranger, "conversations", note)
        sys.exit("a stranger read PHI")
    except UdlError as e:
        assert e.status == 403, e
        print("stranger refused:", e.status, e.kind)

    for i, embedding in enumerate([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.8, 0.2, 0.0]]):
        udl.create(as_patient, "document_chunks", {
            "id": str(uuid.uuid4()), "document_id": str(uuid.uuid4()), "chunk_index": i,
            "text": f"fake coping tip {i}", "embedding": embedding, "embedding_model": "fake-3d",
            "dimension": 3, "content_type": "playbook", "metadata": {},
            "source_media_asset_id": None, "created_at": now})
    found = udl.nearest(as_patient, "document_chunks", "embedding", [1.0, 0.1, 0.0], k=2,
                        filter={"content_type": {"eq": "playbook"}})
    print("retrieved:", [record["text"] for record, _ in found])
    assert [r["text"] for r, _ in found] == ["fake coping tip 0", "fake coping tip 2"]
    count = udl.count(treating, "conversations", {"patient_id": {"eq": patient}})
    print("conversations of the patient:", count)

    session = udl.create_session(as_patient, {"device": "fake-phone"})
    assert udl.session(as_patient, session)["user_id"] == patient
    udl.end_session(as_patient, session)
    assert udl.session(as_patient, session) is None
    allowed = [udl.check_rate(as_patient, "fake-chat", 2, 60_000)[0] for _ in range(3)]
    print("rate limit decisions:", allowed)
    assert allowed == [True, True, False]
    try:
        udl.create(as_patient, "conversations", {"no_such_field": 1})
        sys.exit("an unknown field was sent")
    except ValueError as e:
        print("caught before sending:", e)
print("python journey done")
