package weights

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

const (
	legacyMagic           = "1950a86a20f9469cfc6c" // torch.serialization.MAGIC_NUMBER in hex
	legacyProtocolVersion = 1001
)

// Load reads a torchvision squeezenet1_1 checkpoint written by torch.save,
// in PyTorch's zip format or its legacy (pre-1.6) format, whose top-level
// object is a state_dict (an OrderedDict or dict of tensors). Tensors are
// read honouring their stored offsets and strides and converted to float32.
// classifier.* tensors are ignored; every other tensor must be one of
// Expected, and all of them must be present with their exact shapes.
//
// A file that cannot be decoded yields an error matching ErrNotCheckpoint;
// one that decodes to other tensors yields an error matching
// ErrNotSqueezeNet.
func Load(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("weights: %s is a directory, not a checkpoint file", path)
	}
	if fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, tooLarge(path, fi.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("weights: reading %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(path, int64(len(data)))
	}
	return decode(path, data)
}

func tooLarge(path string, size int64) error {
	return &formatError{path: path, detail: fmt.Sprintf("file is %d bytes, more than the %d-byte limit for SqueezeNet weights", size, MaxFileSize)}
}

// decode turns the bytes of a checkpoint file into a validated Checkpoint.
// path is used in messages only.
func decode(path string, data []byte) (c *Checkpoint, err error) {
	defer func() {
		// gopickle panics on some malformed input; whatever got this far
		// is corrupt, not a programming error worth crashing for.
		if r := recover(); r != nil {
			c, err = nil, &formatError{path: path, detail: "corrupt data", err: fmt.Errorf("decoder panic: %v", r)}
		}
	}()
	var root any
	switch {
	case len(data) == 0:
		return nil, &formatError{path: path, detail: "empty file"}
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		root, err = decodeZip(path, data)
	case data[0] == 0x80: // pickle PROTO opcode: the legacy stream starts with a pickled magic number
		root, err = decodeLegacy(path, data)
	case len(data) >= 512 && string(data[257:262]) == "ustar":
		return nil, &formatError{path: path, detail: "tar archive (PyTorch's pre-0.1.10 format), which is not supported"}
	default:
		return nil, &formatError{path: path, detail: "unrecognised format (neither a zip archive nor a pickle stream)"}
	}
	if err != nil {
		return nil, err
	}
	tensors, err := collect(path, root)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &Checkpoint{Tensors: tensors, Hash: hex.EncodeToString(sum[:]), Path: path}, nil
}

// collect checks a decoded state_dict against Expected and converts its
// tensors.
func collect(path string, root any) (map[string]*Tensor, error) {
	type entry struct{ key, val any }
	var entries []entry
	switch m := root.(type) {
	case *types.OrderedDict:
		for e := m.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			entries = append(entries, entry{oe.Key, oe.Value})
		}
	case *types.Dict:
		for _, e := range *m {
			entries = append(entries, entry{e.Key, e.Value})
		}
	default:
		return nil, layoutErrorf("%s holds %s, want a state_dict (a dict of tensors)", path, typeName(root))
	}

	specs := Expected()
	want := make(map[string][]int, len(specs))
	for _, s := range specs {
		want[s.Name] = s.Shape
	}
	refs := make(map[string]*tensorRef, len(specs))
	var extra []string
	for _, e := range entries {
		key, ok := e.key.(string)
		if !ok {
			return nil, layoutErrorf("%s has a key that is %s, want a tensor name", path, typeName(e.key))
		}
		if strings.HasPrefix(key, "classifier.") {
			continue
		}
		if _, ok := want[key]; !ok {
			extra = append(extra, key)
			continue
		}
		tr, ok := e.val.(*tensorRef)
		if !ok {
			return nil, layoutErrorf("entry %s in %s is %s, not a tensor", key, path, typeName(e.val))
		}
		refs[key] = tr
	}
	var missing []string
	for _, s := range specs {
		if refs[s.Name] == nil {
			missing = append(missing, s.Name)
		}
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > 1 {
			more = fmt.Sprintf(" (and %d more of the %d SqueezeNet 1.1 feature tensors)", len(missing)-1, len(specs))
		}
		return nil, layoutErrorf("missing tensor %s in %s%s", missing[0], path, more)
	}
	if len(extra) > 0 {
		return nil, layoutErrorf("unexpected tensor %s in %s (SqueezeNet 1.1 features have no such tensor)", quoteKey(extra[0]), path)
	}
	out := make(map[string]*Tensor, len(specs))
	for _, s := range specs {
		tr := refs[s.Name]
		if !slices.Equal(tr.size, s.Shape) {
			return nil, layoutErrorf("tensor %s in %s has shape %v, want %v", s.Name, path, tr.size, s.Shape)
		}
		t, err := materialize(path, s.Name, tr)
		if err != nil {
			return nil, err
		}
		out[s.Name] = t
	}
	return out, nil
}

// quoteKey prints a key from the file as is when it looks like a tensor
// name and quoted (and cut short) otherwise.
func quoteKey(s string) string {
	if len(s) > 0 && len(s) <= 100 && strings.IndexFunc(s, func(r rune) bool {
		return r == ' ' || r == '"' || !unicode.IsPrint(r)
	}) < 0 {
		return s
	}
	if len(s) > 100 {
		return strconv.Quote(s[:100]) + "..."
	}
	return strconv.Quote(s)
}

// materialize copies a tensor out of its storage into a row-major float32
// Tensor, following the stored offset and strides. tr.size has been
// checked against the expected shape, so it is small and non-negative.
func materialize(path, name string, tr *tensorRef) (*Tensor, error) {
	v := tr.view
	st := v.st
	var conv func(b []byte, i int) float32
	switch st.dt.name {
	case "float32":
		conv = func(b []byte, i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])) }
	case "float64":
		conv = func(b []byte, i int) float32 {
			return float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case "float16":
		conv = func(b []byte, i int) float32 {
			return math.Float32frombits(pytorch.FloatBits16to32(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case "bfloat16":
		conv = func(b []byte, i int) float32 {
			return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	default:
		return nil, layoutErrorf("tensor %s in %s has dtype %s, want a floating-point type", name, path, st.dt.name)
	}
	if st.data == nil {
		return nil, &formatError{path: path, detail: fmt.Sprintf("tensor %s: storage %.64q has no data", name, st.key)}
	}
	numel := 1
	for _, n := range tr.size {
		numel *= n
	}
	t := &Tensor{Shape: slices.Clone(tr.size), Data: make([]float32, numel)}
	if numel == 0 {
		return t, nil
	}
	// The highest element index the tensor touches must lie in its view.
	last := tr.offset
	ok := tr.offset < v.numel
	for i, n := range tr.size {
		s := tr.stride[i]
		if s < 0 || s > v.numel {
			ok = false
			break
		}
		last += (n - 1) * s
	}
	if !ok || last >= v.numel {
		return nil, &formatError{path: path, detail: fmt.Sprintf("tensor %s: offset %d and strides %v reach outside its storage of %d elements", name, tr.offset, tr.stride, v.numel)}
	}

	nd := len(tr.size)
	idx := make([]int, nd)
	off := v.offset + tr.offset
	for k := range t.Data {
		t.Data[k] = conv(st.data, off)
		for d := nd - 1; d >= 0; d-- {
			idx[d]++
			off += tr.stride[d]
			if idx[d] < tr.size[d] {
				break
			}
			off -= tr.size[d] * tr.stride[d]
			idx[d] = 0
		}
	}
	return t, nil
}
