#!/usr/bin/env python3
"""A scripted OpenAI-compatible Chat Completions server on 127.0.0.1 for the `osiris chat` benchmark
(tests/bench/llm.sh); Python 3 standard library only.

  fake_llm.py REPLY_FILE...     answer POST /v1/chat/completions with the files' contents in turn (cycling),
                                immediately; print the port on stdout, then serve until killed.

No model runs: what the benchmark measures is osiris's own work per attempt.
"""

import http.server
import json
import sys
import threading


def main():
    replies = [open(p).read() for p in sys.argv[1:]]
    if not replies:
        print("usage: fake_llm.py REPLY_FILE...", file=sys.stderr)
        sys.exit(2)
    lock = threading.Lock()
    state = {"next": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(n)
            with lock:
                text = replies[state["next"] % len(replies)]
                state["next"] += 1
            body = json.dumps(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
