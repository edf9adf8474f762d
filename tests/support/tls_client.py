"""A docker-py-like TLS client: GET /_ping over mutual TLS with Python's strict X.509 checks.

usage: tls_client.py NAME PORT CA_FILE [CERT_FILE KEY_FILE]
Connects to 127.0.0.1:PORT and checks the server certificate against NAME (a DNS name or an
IP address, as a client dialling NAME would). Prints the HTTP body. Exit 0: the daemon answered "OK"; 1: the TLS handshake or the request
was refused (the reason is printed on stderr); 2: anything else.
"""

import socket
import ssl
import sys


def main() -> int:
    host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    context = ssl.create_default_context(cafile=ca)
    # What Python 3.13 enables by default and docker-py inherits.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if len(sys.argv) == 6:
        context.load_cert_chain(sys.argv[4], sys.argv[5])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
                response = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    response += chunk
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as err:
        print(f"refused: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - anything else is not a TLS refusal
        print(f"error: {err!r}", file=sys.stderr)
        return 2
    head, _, body = response.partition(b"\r\n\r\n")
    print(body.decode(errors="replace"))
    return 0 if head.startswith(b"HTTP/1.1 200") and body.strip().endswith(b"OK") else 2


if __name__ == "__main__":
    sys.exit(main())
