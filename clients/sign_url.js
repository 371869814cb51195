#!/usr/bin/env node
// Signs a Signet image URL, as a customer's backend does: the README's Node
// snippet, runnable. JSON.stringify leaves non-ASCII characters as UTF-8.
//
// Usage: sign_url.js HOST USER_ID SECRET BASE_ID [NAME=TEXT ...]
const crypto = require("crypto");

function signedUrl(host, userId, secret, baseId, mods, ext = "png") {
  const encoded = Buffer.from(JSON.stringify(mods)).toString("base64").replace(/=+$/, "");
  const sig = crypto.createHmac("sha256", secret).update(`${userId}+${baseId}+${encoded}`).digest("hex");
  return `${host}/${userId}/${baseId}.${ext}?modifications=${encoded}&s=${sig}`;
}

const [host, userId, secret, baseId, ...pairs] = process.argv.slice(2);
if (baseId === undefined) {
  console.error("usage: sign_url.js HOST USER_ID SECRET BASE_ID [NAME=TEXT ...]");
  process.exit(2);
}
const mods = pairs.map((pair) => {
  const at = pair.indexOf("=");
  return { name: pair.slice(0, at), text: pair.slice(at + 1) };
});
console.log(signedUrl(host, userId, secret, baseId, mods));
