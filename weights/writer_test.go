package weights

// Test helpers that write PyTorch checkpoints the way torch.save does, in
// both the zip format and the legacy format, so tests can build
// checkpoints with wrong shapes, missing or extra keys, odd strides, shared
// storages and other dtypes without PyTorch.

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// rawTensor is one state_dict entry as torch would pickle it.
type rawTensor struct {
	key        string    // state_dict key
	shape      []int     // tensor size
	stride     []int     // nil: contiguous
	offset     int       // storage offset, in elements
	store      []float32 // storage contents; nil: data, contiguous
	data       []float32 // row-major values, used when store is nil
	storageKey string    // storage name; "" gives each tensor its own
	dtype      string    // torch storage class; "" is FloatStorage
	view       []int     // legacy format only: (offset, size) of a storage view the tensor is built on
}

// ckptOptions tweaks how writeCheckpoint lays out a file.
type ckptOptions struct {
	legacy    bool   // legacy stream instead of a zip archive
	plainDict bool   // top-level dict instead of OrderedDict
	prefix    string // zip directory name; "" is "archive"
	v1        bool   // torch._utils._rebuild_tensor (PyTorch < 0.4) instead of _rebuild_tensor_v2
	parameter bool   // wrap tensors in torch._utils._rebuild_parameter (nn.Parameter)
	metadata  bool   // set the state_dict's _metadata attribute, as torch >= 0.4 does
}

func contiguousStrides(shape []int) []int {
	s := make([]int, len(shape))
	n := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = n
		n *= shape[i]
	}
	return s
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// rawFromTensors turns loaded tensors into contiguous raw tensors in
// Expected order.
func rawFromTensors(ts map[string]*Tensor) []rawTensor {
	var out []rawTensor
	for _, s := range Expected() {
		t := ts[s.Name]
		out = append(out, rawTensor{key: s.Name, shape: slices.Clone(t.Shape), data: slices.Clone(t.Data)})
	}
	return out
}

// permuted returns a raw tensor holding the same values as a contiguous
// one, but with its storage laid out in the dimension order perm (so its
// strides are not row-major), preceded by pad junk elements and followed by
// pad more.
func permuted(rt rawTensor, perm []int, pad int) rawTensor {
	shape := rt.shape
	pshape := make([]int, len(perm))
	for i, p := range perm {
		pshape[i] = shape[p]
	}
	pstr := contiguousStrides(pshape)
	stride := make([]int, len(shape))
	for i, p := range perm {
		stride[p] = pstr[i]
	}
	store := make([]float32, numel(shape)+2*pad)
	for i := range store {
		store[i] = float32(math.NaN())
	}
	idx := make([]int, len(shape))
	for _, v := range rt.data {
		off := pad
		for d := range idx {
			off += idx[d] * stride[d]
		}
		store[off] = v
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	rt.store, rt.stride, rt.offset, rt.data = store, stride, pad, nil
	return rt
}

// pickler writes protocol-2 pickle opcodes.
type pickler struct{ bytes.Buffer }

func (p *pickler) str(s string) {
	p.WriteByte('X')
	binary.Write(p, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
}

func (p *pickler) int(n int) {
	p.WriteByte('J')
	binary.Write(p, binary.LittleEndian, int32(n))
}

func (p *pickler) global(module, name string) {
	p.WriteString("c" + module + "\n" + name + "\n")
}

func (p *pickler) ints(ns []int) {
	p.WriteByte('(')
	for _, n := range ns {
		p.int(n)
	}
	p.WriteByte('t')
}

var legacyMagicBytes = []byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// storageBytes encodes float32 values as a storage of the given class.
func storageBytes(dtype string, vals []float32) []byte {
	var b bytes.Buffer
	for _, v := range vals {
		switch dtype {
		case "DoubleStorage":
			binary.Write(&b, binary.LittleEndian, float64(v))
		case "LongStorage":
			binary.Write(&b, binary.LittleEndian, int64(v))
		case "HalfStorage": // exact for normal values with 10-bit mantissas
			b32 := math.Float32bits(v)
			h := uint16(b32>>16)&0x8000 | uint16((int(b32>>23&0xff)-127+15)<<10) | uint16(b32>>13&0x3ff)
			if v == 0 {
				h = 0
			}
			binary.Write(&b, binary.LittleEndian, h)
		case "BFloat16Storage":
			binary.Write(&b, binary.LittleEndian, uint16(math.Float32bits(v)>>16))
		default:
			binary.Write(&b, binary.LittleEndian, v)
		}
	}
	return b.Bytes()
}

// storageData is one storage of a checkpoint being written.
type storageData struct {
	key   string
	dtype string
	vals  []float32
}

// encodeCheckpoint returns the bytes torch.save would write for a
// state_dict holding ts.
func encodeCheckpoint(t testing.TB, ts []rawTensor, opt ckptOptions) []byte {
	t.Helper()
	pkl, stors := pickleStateDict(ts, opt)
	if opt.legacy {
		return legacyContainer(pkl, stors)
	}
	prefix := opt.prefix
	if prefix == "" {
		prefix = "archive"
	}
	return zipContainer(t, prefix, pkl, stors)
}

// pickleStateDict pickles the state_dict and returns the storages it names, in order.
func pickleStateDict(ts []rawTensor, opt ckptOptions) ([]byte, []*storageData) {
	var stors []*storageData
	byKey := map[string]*storageData{}
	var p pickler
	p.WriteString("\x80\x02")
	if opt.plainDict {
		p.WriteByte('}')
	} else {
		p.global("collections", "OrderedDict")
		p.WriteString(")R")
	}
	p.WriteByte('(')
	for i, rt := range ts {
		dtype := rt.dtype
		if dtype == "" {
			dtype = "FloatStorage"
		}
		store := rt.store
		if store == nil {
			store = rt.data
		}
		skey := rt.storageKey
		if skey == "" {
			skey = strconv.Itoa(i)
		}
		st := byKey[skey]
		if st == nil {
			st = &storageData{key: skey, dtype: dtype, vals: store}
			byKey[skey] = st
			stors = append(stors, st)
		}
		p.str(rt.key)
		p.tensor(rt, st, opt)
	}
	p.WriteByte('u')
	if opt.metadata {
		// BUILD with state {'_metadata': OrderedDict({'': {'version': 1}})}.
		p.WriteString("}(")
		p.str("_metadata")
		p.global("collections", "OrderedDict")
		p.WriteString(")R(")
		p.str("")
		p.WriteString("}(")
		p.str("version")
		p.WriteString("K\x01uuub")
	}
	p.WriteByte('.')
	return p.Bytes(), stors
}

// tensor pickles rt, a view of st, the way torch._utils rebuilds it.
func (p *pickler) tensor(rt rawTensor, st *storageData, opt ckptOptions) {
	stride := rt.stride
	if stride == nil {
		stride = contiguousStrides(rt.shape)
	}
	if opt.parameter {
		p.global("torch._utils", "_rebuild_parameter")
		p.WriteByte('(')
	}
	if opt.v1 {
		p.global("torch._utils", "_rebuild_tensor")
	} else {
		p.global("torch._utils", "_rebuild_tensor_v2")
	}
	p.WriteString("((")
	p.str("storage")
	p.global("torch", st.dtype)
	p.str(st.key)
	p.str("cpu")
	p.int(len(st.vals))
	if opt.legacy {
		if rt.view != nil {
			p.WriteByte('(')
			p.str(st.key + "/view")
			p.int(rt.view[0])
			p.int(rt.view[1])
			p.WriteByte('t')
		} else {
			p.WriteByte('N') // no view
		}
	}
	p.WriteString("tQ")
	p.int(rt.offset)
	p.ints(rt.shape)
	p.ints(stride)
	if !opt.v1 {
		p.WriteByte(0x89) // requires_grad=False
		p.global("collections", "OrderedDict")
		p.WriteString(")R") // backward_hooks
	}
	p.WriteString("tR")
	if opt.parameter {
		p.WriteByte(0x88) // requires_grad=True
		p.global("collections", "OrderedDict")
		p.WriteString(")RtR")
	}
}

// legacyContainer is the format torch.save wrote before the zip one: magic, protocol, system
// info, the state_dict's pickle, the storage keys, then each storage's length and bytes.
func legacyContainer(pkl []byte, stors []*storageData) []byte {
	var out bytes.Buffer
	out.WriteString("\x80\x02\x8a\x0a")
	out.Write(legacyMagicBytes)
	out.WriteString(".\x80\x02M\xe9\x03.")
	var si pickler
	si.WriteString("\x80\x02}(")
	si.str("protocol_version")
	si.int(1001)
	si.str("little_endian")
	si.WriteString("\x88u.")
	out.Write(si.Bytes())
	out.Write(pkl)
	var keys pickler
	keys.WriteString("\x80\x02](")
	for _, st := range stors {
		keys.str(st.key)
	}
	keys.WriteString("e.")
	out.Write(keys.Bytes())
	for _, st := range stors {
		binary.Write(&out, binary.LittleEndian, uint64(len(st.vals)))
		out.Write(storageBytes(st.dtype, st.vals))
	}
	return out.Bytes()
}

// zipContainer is torch.save's zip format: PREFIX/data.pkl and one file a storage, stored.
func zipContainer(t testing.TB, prefix string, pkl []byte, stors []*storageData) []byte {
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	add := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + "/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	add("data.pkl", pkl)
	add("byteorder", []byte("little"))
	for _, st := range stors {
		add("data/"+st.key, storageBytes(st.dtype, st.vals))
	}
	add("version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// writeCheckpoint writes encodeCheckpoint's bytes to name in a fresh
// temporary directory and returns the path.
func writeCheckpoint(t testing.TB, name string, ts []rawTensor, opt ckptOptions) string {
	t.Helper()
	return writeFile(t, name, encodeCheckpoint(t, ts, opt))
}

func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
