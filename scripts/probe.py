#!/usr/bin/env python3
"""Real protocol round-trips used by scripts/services to decide whether a server is up.

Each probe opens a TCP connection to 127.0.0.1 and performs one genuine request of the server's
own protocol (not just a port check). Exit code 0 means the server answered correctly.
Usage: probe.py postgres|redis|redis_tls|redis_cluster|nats|cassandra|ferretdb|mongodb|toxiproxy PORT
       probe.py initiate_mongodb PORT REPLICA_SET [MEMBER_PORT ...]   (makes the mongod at PORT
           a replica set of itself, or of the members at MEMBER_PORTs, unless it is one already)
       probe.py mongodb_member PORT   (a mongod answers hello at PORT, primary or not)
"""
import socket
import ssl
import struct
import sys

TIMEOUT_S = 2.0


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def probe_postgres(port):
    # StartupMessage v3.0 for user postgres; any authentication request or ReadyForQuery
    # ('R' message) proves a live PostgreSQL backend answered.
    params = b"user\x00postgres\x00database\x00postgres\x00\x00"
    body = struct.pack("!I", 196608) + params
    with connect(port) as s:
        s.sendall(struct.pack("!I", len(body) + 4) + body)
        return read_exact(s, 1) == b"R"


def probe_redis(port):
    with connect(port) as s:
        s.sendall(b"*2\r\n$4\r\nECHO\r\n$9\r\nudl-probe\r\n")
        return read_exact(s, 15) == b"$9\r\nudl-probe\r\n"


def probe_redis_tls(port):
    # The same ECHO over TLS; the certificate is checked by the tests, not here.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(connect(port)) as s:
        s.sendall(b"*2\r\n$4\r\nECHO\r\n$9\r\nudl-probe\r\n")
        return read_exact(s, 15) == b"$9\r\nudl-probe\r\n"


def probe_redis_cluster(port):
    # CLUSTER INFO must report every slot served (cluster_state:ok).
    with connect(port) as s:
        s.sendall(b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n")
        head = b""
        while not head.endswith(b"\r\n"):
            head += read_exact(s, 1)
        if not head.startswith(b"$"):
            return False
        body = read_exact(s, int(head[1:-2]))
        return b"cluster_state:ok" in body


def probe_toxiproxy(port):
    # GET /version over HTTP/1.1; a 200 answer proves the API is up.
    with connect(port) as s:
        s.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return read_exact(s, 12) == b"HTTP/1.1 200"


def probe_nats(port):
    with connect(port) as s:
        info = b""
        while not info.endswith(b"\r\n"):
            info += read_exact(s, 1)
        if not info.startswith(b"INFO ") or b'"jetstream":true' not in info:
            return False
        s.sendall(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        return read_exact(s, 6) == b"PONG\r\n"


def probe_cassandra(port):
    # CQL v4 OPTIONS frame; the server must answer with SUPPORTED (opcode 0x06).
    with connect(port) as s:
        s.sendall(struct.pack("!BBhBI", 0x04, 0, 0, 0x05, 0))
        header = read_exact(s, 9)
        return header[4] == 0x06


def bson_doc(pairs):
    """BSON for a list of (key, value) pairs: ints, strings, nested pair lists (documents) and
    Python lists (arrays)."""
    out = b""
    for key, value in pairs:
        k = key.encode() + b"\x00"
        if isinstance(value, bool):
            out += b"\x08" + k + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            out += b"\x10" + k + struct.pack("<i", value)
        elif isinstance(value, tuple):
            out += b"\x03" + k + bson_doc(list(value))
        elif isinstance(value, list):
            out += b"\x04" + k + bson_doc([(str(i), v) for i, v in enumerate(value)])
        else:
            v = value.encode() + b"\x00"
            out += b"\x02" + k + struct.pack("<i", len(v)) + v
    return struct.pack("<i", len(out) + 5) + out + b"\x00"


def command(port, pairs):
    """One OP_MSG command to the admin database; the raw reply document."""
    doc = bson_doc(pairs + [("$db", "admin")])
    body = struct.pack("<I", 0) + b"\x00" + doc
    header = struct.pack("<iiii", 16 + len(body), 1, 0, 2013)
    with connect(port) as s:
        s.sendall(header + body)
        length = struct.unpack("<i", read_exact(s, 4))[0]
        return read_exact(s, length - 4)


OK = b"\x01ok\x00" + struct.pack("<d", 1.0)


def probe_ferretdb(port):
    # {ping: 1}; the reply must carry ok: 1.0.
    return OK in command(port, [("ping", 1)])


def probe_mongodb(port):
    # {hello: 1} must say this member is the writable primary of its replica set.
    return b"\x08isWritablePrimary\x00\x01" in command(port, [("hello", 1)])


def initiate_mongodb(port, replica_set, member_ports=()):
    """Makes the mongod at `port` a replica set of its own (or of the members at
    `member_ports`, electing within 2 s of losing a primary), unless it is one already."""
    if b"setName" in command(port, [("hello", 1)]):
        return True
    ports = list(member_ports) or [port]
    members = [(("_id", i), ("host", "127.0.0.1:%d" % p)) for i, p in enumerate(ports)]
    config = [("_id", replica_set), ("members", members)]
    if member_ports:
        config.append(("settings", (("electionTimeoutMillis", 2000),)))
    return OK in command(port, [("replSetInitiate", tuple(config))])


def mongodb_member(port):
    # {hello: 1} answered at all: the member runs, primary or not.
    return OK in command(port, [("hello", 1)])


PROBES = {
    "postgres": probe_postgres,
    "redis": probe_redis,
    "redis_tls": probe_redis_tls,
    "redis_cluster": probe_redis_cluster,
    "nats": probe_nats,
    "toxiproxy": probe_toxiproxy,
    "cassandra": probe_cassandra,
    "ferretdb": probe_ferretdb,
    "mongodb": probe_mongodb,
}

if __name__ == "__main__":
    name, port = sys.argv[1], int(sys.argv[2])
    try:
        if name == "initiate_mongodb":
            ok = initiate_mongodb(port, sys.argv[3], [int(p) for p in sys.argv[4:]])
        elif name == "mongodb_member":
            ok = mongodb_member(port)
        else:
            ok = PROBES[name](port)
    except (OSError, ConnectionError, IndexError, ValueError, struct.error):
        ok = False
    sys.exit(0 if ok else 1)
