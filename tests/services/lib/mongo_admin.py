"""The first admin of a test MongoDB server, and the proof that the server checks
passwords (and, when it speaks TLS, refuses plaintext sessions) before any test relies on
it. Used by mongo.sh, tls/mongo.sh and matrix.sh with the server's virtualenv python.

  python mongo_admin.py create [--replset NAME]   the first admin (the localhost exception)
  python mongo_admin.py check [--version]          the admin logs in; a wrong password,
                                                   anonymous commands and (TLS)
                                                   plaintext are refused; with
                                                   --version, prints the server's version

The server and the admin come from the environment, never argv: MONGO_PORT,
MONGO_ADMIN_USER, MONGO_ADMIN_PASS, and MONGO_TLS_CA (the CA that signed the server's
certificate) for a server that speaks TLS only.
"""

import os
import sys
import time

import pymongo
from pymongo.errors import OperationFailure, PyMongoError

HOST = "127.0.0.1"
PORT = int(os.environ["MONGO_PORT"])
USER = os.environ["MONGO_ADMIN_USER"]
PASSWORD = os.environ["MONGO_ADMIN_PASS"]
CA = os.environ.get("MONGO_TLS_CA", "")
TLS = dict(tls=True, tlsCAFile=CA) if CA else {}


def client(timeout_ms=30000, **options):
    return pymongo.MongoClient(HOST, PORT, directConnection=True,
                               serverSelectionTimeoutMS=timeout_ms, **options)


def admin(password, timeout_ms=30000, **options):
    return client(timeout_ms, username=USER, password=password, authSource="admin", **options)


def create(replset):
    c = client(**TLS)
    if replset:
        c.admin.command("replSetInitiate",
                        {"_id": replset, "members": [{"_id": 0, "host": f"{HOST}:{PORT}"}]})
        deadline = time.time() + 60
        while not c.admin.command("hello").get("isWritablePrimary"):
            if time.time() > deadline:
                sys.exit("the replica set never elected a primary")
            time.sleep(0.2)
    c.admin.command("createUser", USER, pwd=PASSWORD, roles=[{"role": "root", "db": "admin"}])


def refused(call, error=PyMongoError):
    try:
        call()
    except error:
        return True
    return False


def check(print_version):
    a = admin(PASSWORD, **TLS)
    a.admin.command("usersInfo", 1)
    if not refused(lambda: admin("wrong-" + PASSWORD, **TLS).admin.command("ping"),
                   OperationFailure):
        sys.exit(f"the MongoDB test server on port {PORT} accepts a wrong password")
    if not refused(lambda: client(**TLS).admin.command("usersInfo", 1), OperationFailure):
        sys.exit(f"the MongoDB test server on port {PORT} runs commands without authentication")
    if TLS and not refused(lambda: admin(PASSWORD, timeout_ms=5000).admin.command("ping")):
        sys.exit(f"the TLS-only MongoDB test server on port {PORT} accepts a plaintext session")
    if print_version:
        print(a.admin.command("buildInfo")["version"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["create"]:
        create(sys.argv[3] if sys.argv[2:3] == ["--replset"] else None)
    elif sys.argv[1:2] == ["check"]:
        check(sys.argv[2:] == ["--version"])
    else:
        sys.exit(__doc__)
