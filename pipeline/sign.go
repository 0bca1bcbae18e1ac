package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// CanonicalQuery is the form of a query that signatures cover: every parameter but sig, sorted by
// name (values of a repeated name keep their order), escaped as url.Values.Encode escapes them.
// "?h=2&w=1" and "?w=1&h=2" have the same canonical query.
func CanonicalQuery(q url.Values) string {
	c := make(url.Values, len(q))
	for k, v := range q {
		if k != "sig" {
			c[k] = v
		}
	}
	return c.Encode()
}

// signedPath is the path as signatures cover it: with a leading slash, cleaned ("/img//a.jpg"
// and "/img/a.jpg" sign alike).
func signedPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// Sign returns the signature of an image URL: the unpadded base64url HMAC-SHA256, under key, of
// the URL's path (decoded and cleaned, e.g. "/img/photos/cat.jpg") + "?" + CanonicalQuery(q).
// Any sig in q is ignored.
func Sign(key []byte, path string, q url.Values) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signedPath(path) + "?" + CanonicalQuery(q)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Verify reports whether q's sig is the signature of path and q under key, in Sign's encoding
// exactly (unpadded base64url): one signature has one spelling. Compared in constant time.
func Verify(key []byte, path string, q url.Values) bool {
	sigs := q["sig"]
	if len(sigs) != 1 {
		return false
	}
	return hmac.Equal([]byte(sigs[0]), []byte(Sign(key, path, q)))
}

// SignURL returns rawURL (absolute, or a path with a query) with its query in canonical order
// and a sig parameter appended that signs it; an existing sig is replaced.
func SignURL(key []byte, rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("plugin: sign %q: %w", rawURL, err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", fmt.Errorf("plugin: sign %q: query: %w", rawURL, err)
	}
	sig := Sign(key, u.Path, q)
	cq := CanonicalQuery(q)
	if cq != "" {
		cq += "&"
	}
	u.RawQuery = cq + "sig=" + sig
	u.ForceQuery = false
	return u.String(), nil
}
