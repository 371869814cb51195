<?php
// A Signet webhook receiver in PHP (7.3+, no extensions beyond the
// standard ones) that verifies each delivery's signature.
//
//   WEBHOOK_SECRET=whsec_... php -S 127.0.0.1:8000 receiver.php
//
// 204 to a delivery whose signature holds, 400 to anything else.

const TOLERANCE_S = 300;

function verify(string $secret, string $id, string $timestamp, string $body, string $header): bool
{
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
    if ($key === false) {
        return false;
    }
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $key, true));
    // Several space-separated signatures may come (key rotation).
    foreach (explode(' ', $header) as $candidate) {
        $parts = explode(',', $candidate, 2);
        if (count($parts) === 2 && $parts[0] === 'v1' && hash_equals($expected, $parts[1])) {
            return true;
        }
    }
    return false;
}

$body = file_get_contents('php://input');
$id = $_SERVER['HTTP_WEBHOOK_ID'] ?? '';
$timestamp = $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '';
$signature = $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '';
$fresh = ctype_digit($timestamp) && abs(time() - (int) $timestamp) <= TOLERANCE_S;

if ($_SERVER['REQUEST_METHOD'] !== 'POST' || !$fresh
    || !verify(getenv('WEBHOOK_SECRET'), $id, $timestamp, $body, $signature)) {
    http_response_code(400);
    exit;
}
$event = json_decode($body, true);
// Retries carry the same webhook-id: a real receiver skips one it has seen.
error_log(json_encode(['id' => $id, 'event' => $event['event'], 'verified' => true]));
http_response_code(204);
