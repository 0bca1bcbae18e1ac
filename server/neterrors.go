package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/styleproxy/styleproxy/pipeline"
)

// jsonErrorListener makes the errors net/http answers by itself, before any handler runs, leave
// in styleproxy's form: a JSON body with Cache-Control: no-store. They are 400 for a request it
// cannot parse (a path such as /img/%zz), 431 for headers over MaxHeaderBytes and 501 for an
// unknown transfer encoding; net/http writes each as one plain-text message straight to the
// connection, which is where it is rewritten.
type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return jsonErrorConn{c}, nil
}

type jsonErrorConn struct{ net.Conn }

func (c jsonErrorConn) Write(b []byte) (int, error) {
	if out, ok := rewriteNetHTTPError(b); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// netHTTPErrorHeaders are the only headers of net/http's own error responses. Its other
// responses always carry more (a Date, at least), so these follow no other status line.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// rewriteNetHTTPError turns one of net/http's own error messages ("HTTP/1.1 400 Bad Request" +
// netHTTPErrorHeaders + text) into the JSON error form; ok is false for anything else.
func rewriteNetHTTPError(b []byte) (out []byte, ok bool) {
	const proto = "HTTP/1.1 "
	if len(b) > 4096 || !bytes.HasPrefix(b, []byte(proto)) {
		return nil, false
	}
	i := bytes.Index(b, []byte(netHTTPErrorHeaders))
	if i < 0 || bytes.Contains(b[:i], []byte("\r\n")) || i < len(proto)+3 {
		return nil, false
	}
	code, err := strconv.Atoi(string(b[len(proto) : len(proto)+3]))
	if err != nil || code < 400 || code > 599 {
		return nil, false
	}
	body, err := json.Marshal(pipeline.ErrorBody{Error: string(b[i+len(netHTTPErrorHeaders):]), Status: code})
	if err != nil {
		return nil, false
	}
	body = append(body, '\n')
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n"+
		"Content-Type: application/json\r\n\r\n%s", code, http.StatusText(code), len(body), body), true
}
