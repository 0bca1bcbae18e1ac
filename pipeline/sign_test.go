package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

func TestCanonicalQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"w=1&h=2", "h=2&w=1"},
		{"h=2&w=1&sig=abc", "h=2&w=1"},
		{"style=starry+night&a=%2F", "a=%2F&style=starry+night"},
		{"b=2&a=1&b=1", "a=1&b=2&b=1"}, // a repeated name keeps its values' order
	} {
		q, err := url.ParseQuery(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := CanonicalQuery(q); got != tc.want {
			t.Errorf("CanonicalQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestSign(t *testing.T) {
	key := []byte("k")
	q := url.Values{"w": {"100"}, "style": {"starry"}, "sig": {"ignored"}}
	// The documented construction, computed independently.
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("/img/a/b.jpg?style=starry&w=100"))
	want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	for _, p := range []string{"/img/a/b.jpg", "img/a/b.jpg", "/img//a/./b.jpg"} {
		if got := Sign(key, p, q); got != want {
			t.Errorf("Sign(%q) = %s, want %s", p, got, want)
		}
	}
	if strings.ContainsAny(want, "+/=") {
		t.Errorf("signature %q is not unpadded base64url", want)
	}

	q.Set("sig", want)
	if !Verify(key, "/img/a/b.jpg", q) {
		t.Error("Verify refused a good signature")
	}
	// One signature has one spelling: no padding, and no other last character that decodes to
	// the same bytes.
	last := strings.IndexByte(alphabet, want[len(want)-1])
	for _, other := range []string{want + "=", want + "==", want[:len(want)-1] + string(alphabet[last^1]), want + "A"} {
		q.Set("sig", other)
		if Verify(key, "/img/a/b.jpg", q) {
			t.Errorf("Verify accepted %q for %q", other, want)
		}
	}
	for name, mod := range map[string]func(url.Values){
		"no sig":        func(v url.Values) { v.Del("sig") },
		"two sigs":      func(v url.Values) { v.Add("sig", want) },
		"bad base64":    func(v url.Values) { v.Set("sig", "!!!") },
		"other param":   func(v url.Values) { v.Set("w", "101") },
		"extra param":   func(v url.Values) { v.Set("h", "1") },
		"truncated sig": func(v url.Values) { v.Set("sig", want[:20]) },
	} {
		v := url.Values{"w": {"100"}, "style": {"starry"}, "sig": {want}}
		mod(v)
		if Verify(key, "/img/a/b.jpg", v) {
			t.Errorf("%s: Verify accepted", name)
		}
	}
	if Verify([]byte("other"), "/img/a/b.jpg", url.Values{"w": {"100"}, "style": {"starry"}, "sig": {want}}) {
		t.Error("Verify accepted another key's signature")
	}

	signed, err := SignURL(key, "https://cdn.example/img/a/b.jpg?w=100&style=starry&sig=old")
	if err != nil {
		t.Fatal(err)
	}
	if signed != "https://cdn.example/img/a/b.jpg?style=starry&w=100&sig="+want {
		t.Errorf("SignURL = %s", signed)
	}
	if signed, _ := SignURL(key, "/img/x.jpg"); !strings.HasPrefix(signed, "/img/x.jpg?sig=") {
		t.Errorf("SignURL without a query = %s", signed)
	}
}
