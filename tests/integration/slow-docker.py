#!/usr/bin/env python3
"""A relay in front of dockerd's socket that answers the container list late.

    slow-docker.py LISTEN_SOCK DOCKER_SOCK [DELAY_S]

Every connection to LISTEN_SOCK is relayed to DOCKER_SOCK byte for byte; a
request for the container list (GET .../containers/json) is held DELAY_S
seconds (default 1.5) before it goes on, so that its answer comes that much
later. The integration test puts it in front of one worker's Docker so that
the agent's assignments always arrive before its adoption list (issue 12,
item 8). Runs until killed."""
import os
import socket
import sys
import threading
import time


def pump(src, dst, delay_list):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if delay_list and b"/containers/json" in data and data.startswith(b"GET "):
                print("delayed a container list by %.1fs" % delay_list, flush=True)
                time.sleep(delay_list)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, docker_path, delay):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(docker_path)
    except OSError:
        client.close()
        return
    threading.Thread(target=pump, args=(client, upstream, delay), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, 0), daemon=True).start()


def main():
    listen_path, docker_path = sys.argv[1], sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 1.5
    if os.path.exists(listen_path):
        os.unlink(listen_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen_path)
    srv.listen(64)
    while True:
        client, _ = srv.accept()
        serve(client, docker_path, delay)


if __name__ == "__main__":
    main()
