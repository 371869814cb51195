// A Signet webhook receiver in Node (18+, no packages) that verifies each
// delivery's signature.
//
//   WEBHOOK_SECRET=whsec_... PORT=8000 node receiver.js
//
// 204 to a delivery whose signature holds, 400 to anything else.
"use strict";
const crypto = require("node:crypto");
const http = require("node:http");

const SECRET = process.env.WEBHOOK_SECRET;
const TOLERANCE_S = 5 * 60;
const MAX_BODY = 1024 * 1024;

function verify(secret, id, timestamp, body, header) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest();
  // Several space-separated signatures may come (key rotation).
  return header.split(" ").some((candidate) => {
    const [version, value] = candidate.split(",");
    if (version !== "v1" || !value) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

http
  .createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(chunk);
    });
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const id = req.headers["webhook-id"] || "";
      const timestamp = req.headers["webhook-timestamp"] || "";
      const signature = req.headers["webhook-signature"] || "";
      const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) <= TOLERANCE_S;
      if (req.method !== "POST" || !fresh || !verify(SECRET, id, timestamp, body, signature)) {
        res.writeHead(400).end();
        return;
      }
      const event = JSON.parse(body);
      // Retries carry the same webhook-id: a real receiver skips one it has seen.
      console.log(JSON.stringify({ id, event: event.event, verified: true }));
      res.writeHead(204).end();
    });
  })
  .listen(Number(process.env.PORT || 8000), "127.0.0.1");
