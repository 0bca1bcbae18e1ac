package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// The two containers torch.save writes: the zip format (PyTorch 1.6 and later) and the legacy
// format before it. Both hand the unpickled state_dict to collect.

// decodeZip decodes PyTorch's zip format: <prefix>/data.pkl holds the
// pickled object, <prefix>/data/<key> the raw little-endian bytes of each
// storage.
func decodeZip(path string, data []byte) (any, error) {
	fail := func(detail string, err error) error {
		return &formatError{path: path, detail: "zip format: " + detail, err: err}
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fail("corrupt or truncated archive", err)
	}
	files := make(map[string]*zip.File, len(zr.File))
	var pkls []*zip.File
	for _, f := range zr.File {
		if _, dup := files[f.Name]; !dup {
			files[f.Name] = f
		}
		if strings.HasSuffix(f.Name, "/data.pkl") && strings.Count(f.Name, "/") == 1 {
			pkls = append(pkls, f)
		}
	}
	switch len(pkls) {
	case 0:
		return nil, fail("no <name>/data.pkl record", nil)
	case 1:
	default:
		return nil, fail("several data.pkl records", nil)
	}
	prefix := strings.TrimSuffix(pkls[0].Name, "data.pkl")
	if _, ok := files[prefix+"constants.pkl"]; ok {
		return nil, fail("TorchScript archive (torch.jit.save), not a state_dict saved with torch.save", nil)
	}
	if f, ok := files[prefix+"byteorder"]; ok {
		b, err := readRecord(f, 16)
		if err != nil {
			return nil, fail("byteorder record", err)
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fail(fmt.Sprintf("byte order %.16q is not supported", s), nil)
		}
	}
	pkl, err := readRecord(pkls[0], MaxFileSize)
	if err != nil {
		return nil, fail(pkls[0].Name, err)
	}

	// Stored records cannot hold more than the file; allow some slack for
	// compressed ones while still bounding what a hostile archive costs.
	d := newDecoder(2 * MaxFileSize)
	d.loadStorage = func(st *storage) error {
		name := prefix + "data/" + st.key
		f, ok := files[name]
		if !ok {
			return fmt.Errorf("no record %.200q for storage %.64q", name, st.key)
		}
		nbytes := st.numel * st.dt.size
		b, err := readRecord(f, nbytes)
		if err != nil && !errors.Is(err, errRecordTooLarge) {
			return fmt.Errorf("record %.200q: %w", name, err)
		}
		if len(b) < nbytes {
			return fmt.Errorf("record %.200q holds %d bytes, its storage needs %d: %w", name, len(b), nbytes, io.ErrUnexpectedEOF)
		}
		st.data = b[:nbytes]
		return nil
	}
	root, _, err := unpickle(pkl, d)
	if err != nil {
		return nil, fail(pkls[0].Name, err)
	}
	return root, nil
}

var errRecordTooLarge = errors.New("record too large")

// readRecord reads a zip record, at most limit bytes of it; a longer record
// yields its first limit bytes and errRecordTooLarge.
func readRecord(f *zip.File, limit int) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return b[:limit], errRecordTooLarge
	}
	return b, nil
}

// decodeLegacy decodes PyTorch's legacy stream: five pickles (magic
// number, protocol version, system info, the object, the list of storage
// keys) followed, for each key, by the storage's element count as a
// little-endian int64 and its raw little-endian bytes.
func decodeLegacy(path string, data []byte) (any, error) {
	fail := func(detail string, err error) error {
		return &formatError{path: path, detail: "legacy format: " + detail, err: err}
	}
	r := 0
	next := func(d *decoder) (any, error) {
		v, n, err := unpickle(data[r:], d)
		r += n
		return v, err
	}
	magic, err := next(nil)
	if err != nil {
		return nil, fail("magic number", err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != legacyMagic {
		return nil, fail("wrong magic number", nil)
	}
	version, err := next(nil)
	if err != nil {
		return nil, fail("protocol version", err)
	}
	if v, ok := version.(int); !ok || v != legacyProtocolVersion {
		return nil, fail(fmt.Sprintf("unsupported protocol version (want %d)", legacyProtocolVersion), nil)
	}
	sysInfo, err := next(nil)
	if err != nil {
		return nil, fail("system info", err)
	}
	if info, ok := sysInfo.(*types.Dict); ok {
		if le, ok := info.Get("little_endian"); ok && le != true {
			return nil, fail("big-endian checkpoints are not supported", nil)
		}
	}

	d := newDecoder(len(data))
	d.legacy = true
	root, err := next(d)
	if err != nil {
		return nil, fail("object pickle", err)
	}
	keysObj, err := next(nil)
	if err != nil {
		return nil, fail("storage keys", err)
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fail("storage keys are "+typeName(keysObj)+", want a list", nil)
	}
	for _, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return nil, fail("storage key is "+typeName(k)+", want a string", nil)
		}
		st, ok := d.storages[key]
		if !ok {
			return nil, fail(fmt.Sprintf("data for storage %.64q, which no tensor uses", key), nil)
		}
		if st.data != nil {
			return nil, fail(fmt.Sprintf("storage %.64q stored twice", key), nil)
		}
		if len(data)-r < 8 {
			return nil, fail(fmt.Sprintf("storage %.64q", key), io.ErrUnexpectedEOF)
		}
		n := binary.LittleEndian.Uint64(data[r:])
		r += 8
		if n != uint64(st.numel) {
			return nil, fail(fmt.Sprintf("storage %.64q holds %d elements, the pickle declares %d", key, n, st.numel), nil)
		}
		nbytes := st.numel * st.dt.size
		if nbytes > len(data)-r {
			return nil, fail(fmt.Sprintf("storage %.64q", key), io.ErrUnexpectedEOF)
		}
		st.data = data[r : r+nbytes : r+nbytes]
		r += nbytes
	}
	return root, nil
}
