package pipeline

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/plugin"
)

func TestOriginAnswersExpire(t *testing.T) {
	const ttl = 20 * time.Millisecond
	a := newOriginAnswers(ttl, ttl)
	missing := notFound("gone.jpg")
	a.remember("a.jpg", "etag=1", nil)
	a.remember("gone.jpg", "", missing)
	a.remember("down.jpg", "", &OriginError{Msg: "down"})
	if v, err, ok := a.lookup("a.jpg"); !ok || v != "etag=1" || err != nil {
		t.Errorf("a.jpg: %q, %v, %v", v, err, ok)
	}
	var nf *plugin.NotFoundError
	if _, err, ok := a.lookup("gone.jpg"); !ok || !errors.As(err, &nf) {
		t.Errorf("gone.jpg: %v, %v; want the remembered 404", err, ok)
	}
	if _, _, ok := a.lookup("down.jpg"); ok {
		t.Error("an origin failure was remembered")
	}
	time.Sleep(3 * ttl)
	for _, p := range []string{"a.jpg", "gone.jpg"} {
		if _, _, ok := a.lookup(p); ok {
			t.Errorf("%s still remembered after its TTL", p)
		}
	}

	if newOriginAnswers(0, 0) != nil {
		t.Error("TTLs of 0 should remember nothing")
	}
	var off *originAnswers
	off.remember("a.jpg", "v", nil)
	if _, _, ok := off.lookup("a.jpg"); ok {
		t.Error("a nil originAnswers remembered")
	}
	// Versions only: a 404 is not kept.
	v := newOriginAnswers(time.Hour, 0)
	v.remember("gone.jpg", "", missing)
	if _, _, ok := v.lookup("gone.jpg"); ok {
		t.Error("a 404 was remembered with NotFoundTTL 0")
	}
}

func TestOriginAnswersAreBounded(t *testing.T) {
	a := newOriginAnswers(time.Hour, time.Hour)
	for i := range maxRemembered + 10 {
		a.remember(fmt.Sprintf("%d.jpg", i), "v", nil)
	}
	if n := a.store.ItemCount(); n != maxRemembered {
		t.Errorf("%d answers kept, want the cap %d", n, maxRemembered)
	}
}
