import hashlib, hmac, json, os, time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["WEBHOOK_SECRET"].encode()

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        fields = dict(part.split("=", 1) for part in self.headers["Crosswalk-Signature"].split(","))
        expected = hmac.new(SECRET, fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(fields["t"])) < 300
        if not (fresh and hmac.compare_digest(expected, fields["v1"])):
            self.send_response(401); self.end_headers(); return
        event = json.loads(body)
        print(self.headers["Crosswalk-Event-Id"], event["type"], json.dumps(event["data"]), flush=True)
        self.send_response(204); self.end_headers()

HTTPServer(("127.0.0.1", 9000), Receiver).serve_forever()
