<?php
// Signs a Signet image URL, as a customer's backend does: the README's PHP
// snippet, runnable. json_encode keeps non-ASCII characters and slashes as
// they are.
//
// Usage: php sign_url.php HOST USER_ID SECRET BASE_ID [NAME=TEXT ...]

function signed_url($host, $user_id, $secret, $base_id, $mods, $ext = 'png') {
    $json = json_encode($mods, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    $encoded = rtrim(base64_encode($json), '=');
    $sig = hash_hmac('sha256', "$user_id+$base_id+$encoded", $secret);
    return "$host/$user_id/$base_id.$ext?modifications=$encoded&s=$sig";
}

if ($argc < 5) {
    fwrite(STDERR, "usage: php sign_url.php HOST USER_ID SECRET BASE_ID [NAME=TEXT ...]\n");
    exit(2);
}
[, $host, $user_id, $secret, $base_id] = $argv;
$mods = [];
foreach (array_slice($argv, 5) as $pair) {
    [$name, $text] = explode('=', $pair, 2);
    $mods[] = ['name' => $name, 'text' => $text];
}
echo signed_url($host, $user_id, $secret, $base_id, $mods), "\n";
