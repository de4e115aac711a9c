#!/usr/bin/env python3
"""Records the requests real Kafka clients send, as seeds for the fuzz corpus.

A TCP proxy: listens on LISTEN_PORT, forwards to a broker on BROKER_PORT, and writes each
request frame a client sends (without its 4-byte length) to OUT_DIR/<sha1 of the frame>.
Start `edm broker --advertised-port LISTEN_PORT` so that clients come back through it.

    python3 fuzz/capture.py LISTEN_PORT BROKER_PORT OUT_DIR
"""
import hashlib
import os
import socket
import struct
import sys
import threading


def pump_requests(client, broker, out_dir):
    buffer = b""
    while True:
        data = client.recv(65536)
        if not data:
            break
        broker.sendall(data)
        buffer += data
        while len(buffer) >= 4:
            (length,) = struct.unpack(">I", buffer[:4])
            if len(buffer) < 4 + length:
                break
            frame, buffer = buffer[4 : 4 + length], buffer[4 + length :]
            name = hashlib.sha1(frame).hexdigest()
            with open(os.path.join(out_dir, name), "wb") as seed:
                seed.write(frame)
    broker.close()


def pump_answers(broker, client):
    while True:
        data = broker.recv(65536)
        if not data:
            break
        client.sendall(data)
    client.close()


def main():
    listen_port, broker_port, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.makedirs(out_dir, exist_ok=True)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    while True:
        client, _ = server.accept()
        broker = socket.create_connection(("127.0.0.1", broker_port))
        threading.Thread(target=pump_requests, args=(client, broker, out_dir), daemon=True).start()
        threading.Thread(target=pump_answers, args=(broker, client), daemon=True).start()


if __name__ == "__main__":
    main()
