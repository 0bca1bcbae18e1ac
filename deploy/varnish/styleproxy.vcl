vcl 4.1;

# Varnish 7.1 in front of `styleproxy serve` (the origin). Needs varnish-modules for xkey.
#
# - Images are cached as the origin says: style=NAME@VERSION and plain images for a year
#   (immutable), style=NAME for --cache-control-unpinned (an hour, stale for a day).
# - Purge one style or one picture by key, from localhost (the purgers ACL) only:
#     curl -X PURGE -H 'xkey-purge: style:starry' http://127.0.0.1:6081/
#     curl -X PURGE -H 'xkey-purge: source:photos/cat.jpg' http://127.0.0.1:6081/
# - format=auto varies by Accept: Accept is reduced to what the origin chooses by (AVIF,
#   WebP, neither), so browsers' many Accept strings share a few cached objects.
# - Errors are never cached (the origin sends no-store; this makes sure).
# - X-Cache: HIT or MISS on every response, for debugging.

import std;
import xkey;

backend styleproxy {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 2s;
    # Above the origin's --timeout (2m by default), so a slow stylization ends as the origin's
    # JSON 504 (its work goes on and is cached), not as Varnish's own 503.
    .first_byte_timeout = 130s;
    .between_bytes_timeout = 10s;
    # /healthz answers at once even while every worker is stylizing.
    .probe = {
        .request = "GET /healthz HTTP/1.1"
                   "Host: styleproxy"
                   "Connection: close";
        .interval = 2s;
        .timeout = 1s;
        .window = 5;
        .threshold = 3;
    }
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "Send xkey-purge: KEY [KEY...]"));
        }
        set req.http.X-Purged = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged " + req.http.X-Purged));
    }
    # The admin API, metrics and the gallery's live endpoints are never cached.
    if (req.url ~ "^/(admin|metrics|api)(/|\?|$)") {
        return (pass);
    }
    if (req.url ~ "^/img/") {
        unset req.http.Cookie;
        if (req.url ~ "[?&]format=auto(&|$)") {
            call styleproxy_accept;
        } else {
            unset req.http.Accept; # only format=auto depends on it
        }
    }
}

# styleproxy_accept keeps of Accept only what the origin's format=auto looks at: image/avif and
# image/webp, each unless refused with q=0.
sub styleproxy_accept {
    set req.http.X-Avif = "";
    set req.http.X-Webp = "";
    if (req.http.Accept ~ "(?i)image/avif" && req.http.Accept !~ "(?i)image/avif\s*;\s*q=0(\.0*)?\s*(,|$)") {
        set req.http.X-Avif = "image/avif,";
    }
    if (req.http.Accept ~ "(?i)image/webp" && req.http.Accept !~ "(?i)image/webp\s*;\s*q=0(\.0*)?\s*(,|$)") {
        set req.http.X-Webp = "image/webp,";
    }
    set req.http.Accept = req.http.X-Avif + req.http.X-Webp + "*/*";
    unset req.http.X-Avif;
    unset req.http.X-Webp;
}

sub vcl_backend_response {
    if (beresp.status >= 400) {
        set beresp.ttl = 0s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

sub vcl_synth {
    set resp.http.Cache-Control = "no-store";
}

sub vcl_backend_error {
    set beresp.http.Cache-Control = "no-store";
    set beresp.ttl = 0s;
}
