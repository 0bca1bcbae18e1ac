package weights

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"

	"github.com/styleproxy/styleproxy/internal/testutil"
)

const (
	legacyName = "squeezenet1_1_features.pth"
	zipName    = "squeezenet1_1_features_zip.pth"
)

// sharedDir returns the folder holding the two shared SqueezeNet
// checkpoints: $STYLEPROXY_WEIGHTS (a folder, or a file in it) if that holds
// them, else the shared test data's weights folder.
func sharedDir(t testing.TB) string {
	t.Helper()
	var tried []string
	if v := os.Getenv(EnvVar); v != "" {
		if fi, err := os.Stat(v); err == nil && !fi.IsDir() {
			v = filepath.Dir(v)
		}
		tried = append(tried, v+" ($"+EnvVar+")")
		if hasShared(v) {
			return v
		}
	}
	d := testutil.Shared(t, "weights")
	tried = append(tried, d)
	if hasShared(d) {
		return d
	}
	t.Fatalf("the shared SqueezeNet weights (%s and %s) are not in %s; set %s to the folder that holds them",
		legacyName, zipName, strings.Join(tried, " or "), EnvVar)
	return ""
}

func hasShared(dir string) bool {
	for _, n := range []string{legacyName, zipName} {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

var (
	realOnce sync.Once
	realCkpt *Checkpoint
	realErr  error
)

// realCheckpoint loads the shared legacy checkpoint once.
func realCheckpoint(t testing.TB) *Checkpoint {
	t.Helper()
	dir := sharedDir(t)
	realOnce.Do(func() { realCkpt, realErr = Load(filepath.Join(dir, legacyName)) })
	if realErr != nil {
		t.Fatal(realErr)
	}
	return realCkpt
}

func sameTensor(a, b *Tensor) bool {
	if a == nil || b == nil || !slices.Equal(a.Shape, b.Shape) || len(a.Data) != len(b.Data) {
		return false
	}
	for i := range a.Data {
		if math.Float32bits(a.Data[i]) != math.Float32bits(b.Data[i]) {
			return false
		}
	}
	return true
}

func TestExpected(t *testing.T) {
	specs := Expected()
	if len(specs) != 50 {
		t.Fatalf("Expected() has %d tensors, want 50", len(specs))
	}
	shapes := map[string][]int{}
	for _, s := range specs {
		shapes[s.Name] = s.Shape
	}
	if len(shapes) != 50 {
		t.Fatalf("Expected() names %d distinct tensors, want 50", len(shapes))
	}
	for name, want := range map[string][]int{
		"features.0.weight":            {64, 3, 3, 3},
		"features.0.bias":              {64},
		"features.3.squeeze.weight":    {16, 64, 1, 1},
		"features.4.squeeze.weight":    {16, 128, 1, 1},
		"features.7.expand1x1.weight":  {128, 32, 1, 1},
		"features.9.expand3x3.weight":  {192, 48, 3, 3},
		"features.12.squeeze.weight":   {64, 512, 1, 1},
		"features.12.expand3x3.weight": {256, 64, 3, 3},
		"features.12.expand3x3.bias":   {256},
	} {
		if got := shapes[name]; !slices.Equal(got, want) {
			t.Errorf("shape of %s = %v, want %v", name, got, want)
		}
	}
	// Each fire module's output feeds the next one's input (pools aside).
	fires := fireModules
	for i := 1; i < len(fires); i++ {
		if out := fires[i-1].Expand1x1 + fires[i-1].Expand3x3; out != fires[i].In {
			t.Errorf("fire %d outputs %d channels, fire %d takes %d", fires[i-1].Index, out, fires[i].Index, fires[i].In)
		}
	}
}

func TestLoadSharedFiles(t *testing.T) {
	dir := sharedDir(t)
	var loaded []*Checkpoint
	for _, name := range []string{legacyName, zipName} {
		p := filepath.Join(dir, name)
		c, err := Load(p)
		if err != nil {
			t.Fatalf("Load(%s): %v", p, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if c.Hash != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: Hash = %s, want the file's SHA-256 %x", name, c.Hash, sum)
		}
		if len(c.Tensors) != 50 {
			t.Errorf("%s: %d tensors, want 50", name, len(c.Tensors))
		}
		for _, s := range Expected() {
			tt := c.Tensors[s.Name]
			if tt == nil || !slices.Equal(tt.Shape, s.Shape) || len(tt.Data) != numel(s.Shape) {
				t.Fatalf("%s: tensor %s malformed", name, s.Name)
			}
			for _, v := range tt.Data {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: tensor %s holds %v", name, s.Name, v)
				}
			}
		}
		if c.Tensors["classifier.1.weight"] != nil || c.Tensors["nope"] != nil {
			t.Errorf("%s: Get of an absent name is not nil", name)
		}
		loaded = append(loaded, c)
	}
	if loaded[0].Hash == loaded[1].Hash {
		t.Error("both files have the same hash")
	}
	for _, s := range Expected() {
		if !sameTensor(loaded[0].Tensors[s.Name], loaded[1].Tensors[s.Name]) {
			t.Errorf("tensor %s differs between the legacy and the zip file", s.Name)
		}
	}
}

// TestLoadAgreesWithGopickle checks the decoder against gopickle's own
// PyTorch loader on the shared files.
func TestLoadAgreesWithGopickle(t *testing.T) {
	dir := sharedDir(t)
	for _, name := range []string{legacyName, zipName} {
		p := filepath.Join(dir, name)
		ours, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		v, err := pytorch.Load(p)
		if err != nil {
			t.Fatalf("gopickle: %v", err)
		}
		od, ok := v.(*types.OrderedDict)
		if !ok {
			t.Fatalf("gopickle returned %T", v)
		}
		n := 0
		for e := od.List.Front(); e != nil; e = e.Next() {
			ent := e.Value.(*types.OrderedDictEntry)
			key := ent.Key.(string)
			pt := ent.Value.(*pytorch.Tensor)
			data := pt.Source.(*pytorch.FloatStorage).Data
			want := make([]float32, numel(pt.Size))
			idx := make([]int, len(pt.Size))
			for k := range want {
				off := pt.StorageOffset
				for d := range idx {
					off += idx[d] * pt.Stride[d]
				}
				want[k] = data[off]
				for d := len(idx) - 1; d >= 0; d-- {
					if idx[d]++; idx[d] < pt.Size[d] {
						break
					}
					idx[d] = 0
				}
			}
			if !sameTensor(ours.Tensors[key], &Tensor{Shape: pt.Size, Data: want}) {
				t.Errorf("%s: tensor %s differs from gopickle's", name, key)
			}
			n++
		}
		if n != 50 {
			t.Errorf("%s: gopickle found %d tensors", name, n)
		}
	}
}

func TestLoadNotCheckpoint(t *testing.T) {
	dir := sharedDir(t)
	legacy, err := os.ReadFile(filepath.Join(dir, legacyName))
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := os.ReadFile(filepath.Join(dir, zipName))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(random)
	randomPickle := append([]byte{0x80, 0x02}, random...)
	var tarball bytes.Buffer
	tarball.Write(make([]byte, 257))
	tarball.WriteString("ustar\x0000")
	tarball.Write(make([]byte, 1024))

	var torchScript bytes.Buffer
	zw := zip.NewWriter(&torchScript)
	for _, n := range []string{"m/data.pkl", "m/constants.pkl", "m/version"} {
		w, _ := zw.Create(n)
		w.Write([]byte("\x80\x02}."))
	}
	zw.Close()

	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "empty file", nil},
		{"random bytes", "unrecognised format", random},
		{"random after a pickle header", "not a PyTorch checkpoint", randomPickle},
		{"zeros", "unrecognised format", make([]byte, 1024)}, // gopickle's own loader spins forever on this
		{"truncated legacy", "truncated", legacy[:len(legacy)/2]},
		{"truncated legacy pickle", "unexpected EOF", legacy[:1000]},
		{"truncated zip", "corrupt or truncated archive", zipped[:len(zipped)/2]},
		{"zip without end", "corrupt or truncated archive", zipped[:len(zipped)-10]},
		{"legacy without storages", "unexpected EOF", legacy[:len(legacy)-4]},
		{"tar", "tar archive", tarball.Bytes()},
		{"TorchScript", "TorchScript", torchScript.Bytes()},
		{"text", "unrecognised format", []byte("version https://git-lfs.github.com/spec/v1\noid sha256:...\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "x.pth", tc.data)
			c, err := Load(p)
			if err == nil {
				t.Fatalf("Load succeeded: %d tensors", len(c.Tensors))
			}
			if !errors.Is(err, ErrNotCheckpoint) {
				t.Errorf("error %q does not match ErrNotCheckpoint", err)
			}
			msg := err.Error()
			for _, w := range []string{"weights: ", p, "not a PyTorch checkpoint", tc.want} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nope.pth")
		_, err := Load(p)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Errorf("err = %v, want a not-exist error naming %s", err, p)
		}
	})
	t.Run("directory", func(t *testing.T) {
		d := t.TempDir()
		_, err := Load(d)
		if err == nil || !strings.Contains(err.Error(), "directory") {
			t.Errorf("err = %v, want a directory error", err)
		}
	})
}

// TestLoadSynthetic runs Load on checkpoints written by the test's own
// torch.save imitation, in both formats.
func TestLoadSynthetic(t *testing.T) {
	real := realCheckpoint(t)
	base := func() []rawTensor { return rawFromTensors(real.Tensors) }
	find := func(ts []rawTensor, key string) int {
		for i := range ts {
			if ts[i].key == key {
				return i
			}
		}
		t.Fatalf("no %s", key)
		return -1
	}
	edit := func(f func(ts []rawTensor) []rawTensor) func() []rawTensor {
		return func() []rawTensor { return f(base()) }
	}

	const (
		ok          = ""
		notCkpt     = "not a PyTorch checkpoint"
		notSqueeze  = "squeeze"
		squeezeW    = "features.3.squeeze.weight"
		expand3x3W  = "features.9.expand3x3.weight"
		expand3x3Wd = 192 * 48 * 3 * 3
	)
	for _, tc := range []struct {
		name       string
		ts         func() []rawTensor
		opt        ckptOptions
		kind       string // ok, notCkpt or notSqueeze
		legacyOnly bool
		wants      []string // substrings of the error message
	}{
		{name: "valid", ts: base, kind: ok},
		{name: "plain dict", ts: base, opt: ckptOptions{plainDict: true}, kind: ok},
		{name: "other zip prefix", ts: base, opt: ckptOptions{prefix: "squeezenet1_1_features_zip"}, kind: ok},
		{name: "PyTorch 0.3 rebuild", ts: base, opt: ckptOptions{v1: true}, kind: ok},
		{name: "state_dict metadata", ts: base, opt: ckptOptions{metadata: true}, kind: ok},
		{name: "nn.Parameter values", ts: base, opt: ckptOptions{parameter: true}, kind: ok},
		{name: "legacy storage view", legacyOnly: true, kind: ok, ts: edit(func(ts []rawTensor) []rawTensor {
			// features.0.bias lives at elements 10..73 of a 100-element
			// storage, reached through a view starting at element 8.
			i := find(ts, "features.0.bias")
			store := make([]float32, 100)
			copy(store[10:], ts[i].data)
			ts[i] = rawTensor{key: ts[i].key, shape: ts[i].shape, store: store, view: []int{8, 70}, offset: 2}
			return ts
		})},
		{name: "legacy view too short", legacyOnly: true, kind: notCkpt, wants: []string{"features.0.bias", "outside its storage"}, ts: edit(func(ts []rawTensor) []rawTensor {
			i := find(ts, "features.0.bias")
			store := make([]float32, 100)
			ts[i] = rawTensor{key: ts[i].key, shape: ts[i].shape, store: store, view: []int{8, 60}, offset: 2}
			return ts
		})},
		{name: "reversed order", ts: edit(func(ts []rawTensor) []rawTensor { slices.Reverse(ts); return ts }), kind: ok},
		{name: "classifier ignored", kind: ok, ts: edit(func(ts []rawTensor) []rawTensor {
			return append(ts,
				rawTensor{key: "classifier.1.weight", shape: []int{10, 512, 1, 1}, data: make([]float32, 5120)},
				rawTensor{key: "classifier.1.bias", shape: []int{10}, data: make([]float32, 10)})
		})},
		{name: "transposed strides", kind: ok, ts: edit(func(ts []rawTensor) []rawTensor {
			i := find(ts, "features.0.weight")
			ts[i] = permuted(ts[i], []int{1, 0, 3, 2}, 0)
			return ts
		})},
		{name: "strides and offset", kind: ok, ts: edit(func(ts []rawTensor) []rawTensor {
			i := find(ts, expand3x3W)
			ts[i] = permuted(ts[i], []int{3, 1, 2, 0}, 7)
			return ts
		})},
		{name: "shared storage", kind: ok, ts: edit(func(ts []rawTensor) []rawTensor {
			a, b := find(ts, "features.0.bias"), find(ts, "features.3.squeeze.bias")
			store := append(slices.Clone(ts[a].data), ts[b].data...)
			ts[a] = rawTensor{key: ts[a].key, shape: ts[a].shape, store: store, storageKey: "shared"}
			ts[b] = rawTensor{key: ts[b].key, shape: ts[b].shape, store: store, offset: 64, storageKey: "shared"}
			return ts
		})},
		{name: "broadcast stride", kind: ok, ts: edit(func(ts []rawTensor) []rawTensor {
			// A bias whose values are all equal, stored once with stride 0.
			i := find(ts, "features.4.squeeze.bias")
			ts[i] = rawTensor{key: ts[i].key, shape: []int{16}, stride: []int{0}, store: []float32{0.25}}
			return ts
		})},
		{name: "float64", kind: ok, ts: edit(func(ts []rawTensor) []rawTensor {
			ts[find(ts, squeezeW)].dtype = "DoubleStorage"
			return ts
		})},
		{name: "wrong shape", kind: notSqueeze, wants: []string{squeezeW, "[32 64 1 1]", "want [16 64 1 1]"}, ts: edit(func(ts []rawTensor) []rawTensor {
			i := find(ts, squeezeW)
			ts[i].shape = []int{32, 64, 1, 1}
			ts[i].data = append(ts[i].data, ts[i].data...)
			return ts
		})},
		{name: "wrong rank", kind: notSqueeze, wants: []string{"features.0.bias", "[8 8]", "want [64]"}, ts: edit(func(ts []rawTensor) []rawTensor {
			ts[find(ts, "features.0.bias")].shape = []int{8, 8}
			return ts
		})},
		{name: "missing key", kind: notSqueeze, wants: []string{"weights: missing tensor " + squeezeW}, ts: edit(func(ts []rawTensor) []rawTensor {
			return slices.Delete(ts, find(ts, squeezeW), find(ts, squeezeW)+1)
		})},
		{name: "extra key", kind: notSqueeze, wants: []string{"unexpected tensor features.13.weight"}, ts: edit(func(ts []rawTensor) []rawTensor {
			return append(ts, rawTensor{key: "features.13.weight", shape: []int{4}, data: make([]float32, 4)})
		})},
		{name: "DataParallel prefix", kind: notSqueeze, wants: []string{"missing tensor features.0.weight", "and 49 more"}, ts: edit(func(ts []rawTensor) []rawTensor {
			for i := range ts {
				ts[i].key = "module." + ts[i].key
			}
			return ts
		})},
		{name: "integer tensor", kind: notSqueeze, wants: []string{"features.0.bias", "int64"}, ts: edit(func(ts []rawTensor) []rawTensor {
			ts[find(ts, "features.0.bias")].dtype = "LongStorage"
			return ts
		})},
		{name: "strides past storage", kind: notCkpt, wants: []string{"features.0.weight", "outside its storage"}, ts: edit(func(ts []rawTensor) []rawTensor {
			i := find(ts, "features.0.weight")
			ts[i].stride = []int{27, 9, 3, 2}
			return ts
		})},
		{name: "offset past storage", kind: notCkpt, wants: []string{"features.0.bias", "outside its storage"}, ts: edit(func(ts []rawTensor) []rawTensor {
			ts[find(ts, "features.0.bias")].offset = 1
			return ts
		})},
	} {
		for _, legacy := range []bool{false, true} {
			opt := tc.opt
			opt.legacy = legacy
			format := "zip"
			if tc.legacyOnly && !legacy {
				continue
			}
			if legacy {
				format = "legacy"
				if opt.prefix != "" {
					continue
				}
			}
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				ts := tc.ts()
				p := writeCheckpoint(t, "synthetic.pth", ts, opt)
				c, err := Load(p)
				switch tc.kind {
				case ok:
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range Expected() {
						want := real.Tensors[s.Name]
						if s.Name == "features.4.squeeze.bias" && tc.name == "broadcast stride" {
							want = &Tensor{Shape: []int{16}, Data: slices.Repeat([]float32{0.25}, 16)}
						}
						if !sameTensor(c.Tensors[s.Name], want) {
							t.Errorf("tensor %s differs from the original", s.Name)
						}
					}
					if len(c.Tensors) != 50 {
						t.Errorf("%d tensors, want 50", len(c.Tensors))
					}
					return
				case notCkpt:
					if !errors.Is(err, ErrNotCheckpoint) {
						t.Fatalf("err = %v, want ErrNotCheckpoint", err)
					}
				case notSqueeze:
					if !errors.Is(err, ErrNotSqueezeNet) || errors.Is(err, ErrNotCheckpoint) {
						t.Fatalf("err = %v, want ErrNotSqueezeNet", err)
					}
				}
				for _, w := range append(tc.wants, p) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
			})
		}
	}
}

// TestLoadHostile feeds crafted files that try to make the decoder
// allocate, loop or panic.
func TestLoadHostile(t *testing.T) {
	small := []rawTensor{{key: "features.0.bias", shape: []int{2}, data: []float32{1, 2}}}
	legacy := encodeCheckpoint(t, small, ckptOptions{legacy: true})
	header := legacy[:bytes.Index(legacy, []byte("\x80\x02ccollections"))]

	// A zip checkpoint whose data.pkl is the given pickle.
	zipWith := func(pkl []byte, records map[string][]byte) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create("archive/data.pkl")
		w.Write(pkl)
		for n, d := range records {
			w, _ := zw.Create("archive/" + n)
			w.Write(d)
		}
		zw.Close()
		return b.Bytes()
	}
	storagePickle := func(numel string) []byte {
		return []byte("\x80\x02}(X\x01\x00\x00\x00kctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu" +
			numel + "tQK\x00(K\x02t(K\x01t\x89)tRu.")
	}
	deep := bytes.Repeat([]byte("("), 100000)

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"BINBYTES8 of 2^60 bytes", append(slices.Clone(header), "\x80\x02\x8e\x00\x00\x00\x00\x00\x00\x00\x10."...)},
		{"BINUNICODE8 of 2^40 bytes", append(slices.Clone(header), "\x80\x02\x8d\x00\x00\x00\x00\x00\x01\x00\x00."...)},
		{"FRAME of 2^50 bytes", []byte("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x04\x00N.")},
		{"LONG4 of 2 GiB", []byte("\x80\x02\x8b\xff\xff\xff\x7f")},
		{"LONG4 of 1 MiB", append([]byte("\x80\x02\x8b\x00\x00\x10\x00"), make([]byte, 1<<20)...)},
		{"empty LONG1", []byte("\x80\x02\x8a\x00.")}, // gopickle panics decoding it
		{"long decimal", []byte("\x80\x02L" + strings.Repeat("9", 100000) + "\n.")},
		{"unknown opcode", []byte("\x80\x02\xff.")},
		{"no STOP", []byte("\x80\x02N")},
		{"stack underflow", []byte("\x80\x02t.")},
		{"deep marks", append(append([]byte("\x80\x02"), deep...), '.')},
		{"wrong magic", []byte("\x80\x02K\x01.\x80\x02M\xe9\x03.")},
		{"wrong protocol", append(slices.Clone(legacy[:15]), "\x80\x02M\xea\x03."...)},
		{"legacy storage of 2^40 elements", bytes.Replace(legacy, []byte("J\x02\x00\x00\x00N"), []byte("\x8a\x06\x00\x00\x00\x00\x00\x01N"), 1)},
		{"legacy storage size mismatch", append(legacy[:len(legacy)-16], "\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80?\x00\x00\x00@"...)},
		{"legacy unknown storage key", bytes.Replace(legacy, []byte("](X\x01\x00\x00\x000e"), []byte("](X\x01\x00\x00\x009e"), 1)},
		{"zip storage of 2^40 elements", zipWith(storagePickle("\x8a\x06\x00\x00\x00\x00\x00\x01"), map[string][]byte{"data/0": make([]byte, 8)})},
		{"zip negative storage size", zipWith(storagePickle("J\xff\xff\xff\xff"), map[string][]byte{"data/0": make([]byte, 8)})},
		{"zip storage record missing", zipWith(storagePickle("K\x02"), nil)},
		{"zip storage record short", zipWith(storagePickle("K\x02"), map[string][]byte{"data/0": make([]byte, 7)})},
		{"zip unknown global", zipWith([]byte("\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR."), nil)},
		{"zip persistent id not a tuple", zipWith([]byte("\x80\x02K\x01Q."), nil)},
		{"zip big-endian", zipWith(storagePickle("K\x02"), map[string][]byte{"data/0": make([]byte, 8), "byteorder": []byte("big")})},
		{"zip tensor rebuilt from a non-storage", zipWith([]byte("\x80\x02}(X\x01\x00\x00\x00kctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x00(K\x02t(K\x01t\x89)tRu."), nil)},
		{"zip without data.pkl", func() []byte {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			zw.Create("archive/version")
			zw.Close()
			return b.Bytes()
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "hostile.pth", tc.data)
			_, err := Load(p)
			if !errors.Is(err, ErrNotCheckpoint) && !errors.Is(err, ErrNotSqueezeNet) {
				t.Fatalf("err = %v, want ErrNotCheckpoint or ErrNotSqueezeNet", err)
			}
			t.Log(err)
			if len(err.Error()) > 2000 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestLoadReducedPrecision(t *testing.T) {
	ts := rawFromTensors(realCheckpoint(t).Tensors)
	want := make([]float32, 64)
	for i := range want {
		want[i] = float32(i)/4 - 8 // exact in float16 and bfloat16
	}
	for _, dtype := range []string{"HalfStorage", "BFloat16Storage", "DoubleStorage"} {
		for _, legacy := range []bool{false, true} {
			ts[1] = rawTensor{key: "features.0.bias", shape: []int{64}, data: want, dtype: dtype}
			c, err := Load(writeCheckpoint(t, "p.pth", ts, ckptOptions{legacy: legacy}))
			if err != nil {
				t.Fatalf("%s: %v", dtype, err)
			}
			if !sameTensor(c.Tensors["features.0.bias"], &Tensor{Shape: []int{64}, Data: want}) {
				t.Errorf("%s (legacy %v): got %v, want %v", dtype, legacy, c.Tensors["features.0.bias"].Data, want)
			}
		}
	}
}

func TestLoadTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.pth")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileSize + 1); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	_, err = Load(p)
	if !errors.Is(err, ErrNotCheckpoint) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("err = %v, want a size-limit error", err)
	}
}

// FuzzDecode checks that no input makes the decoder panic, hang or fail
// with an error outside the two documented kinds.
func FuzzDecode(f *testing.F) {
	small := []rawTensor{
		{key: "features.0.bias", shape: []int{2}, data: []float32{1, 2}},
		{key: "features.3.squeeze.bias", shape: []int{2, 2}, stride: []int{1, 2}, data: []float32{1, 2, 3, 4}},
	}
	for _, legacy := range []bool{false, true} {
		f.Add(encodeCheckpoint(f, small, ckptOptions{legacy: legacy}))
		f.Add(encodeCheckpoint(f, small, ckptOptions{legacy: legacy, plainDict: true}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := decode("fuzz.pth", data)
		if err == nil || (!errors.Is(err, ErrNotCheckpoint) && !errors.Is(err, ErrNotSqueezeNet)) {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "decoder panic") {
			// Recovered, but worth knowing about while fuzzing.
			t.Logf("recovered: %v", err)
		}
	})
}

func Example() {
	path, err := Resolve("") // --weights, $STYLEPROXY_WEIGHTS or the user cache
	if err != nil {
		fmt.Println(err)
		return
	}
	ckpt, err := Load(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	conv1 := ckpt.Tensors["features.0.weight"] // [64 3 3 3]
	fmt.Println(conv1.Shape, ckpt.Hash[:8])
}
