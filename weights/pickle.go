package weights

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// dtype is the element type of a torch storage.
type dtype struct {
	name string
	size int
}

var storageTypes = map[string]dtype{
	"FloatStorage":    {"float32", 4},
	"DoubleStorage":   {"float64", 8},
	"HalfStorage":     {"float16", 2},
	"BFloat16Storage": {"bfloat16", 2},
	"LongStorage":     {"int64", 8},
	"IntStorage":      {"int32", 4},
	"ShortStorage":    {"int16", 2},
	"CharStorage":     {"int8", 1},
	"ByteStorage":     {"uint8", 1},
	"BoolStorage":     {"bool", 1},
}

// storageClass stands for a torch.*Storage class in a persistent id.
type storageClass struct{ dt dtype }

// storage is one torch storage: numel elements of dt, little-endian.
type storage struct {
	key   string
	dt    dtype
	numel int
	data  []byte // nil until the storage's bytes are read
}

// storageView is a storage, or a legacy-format view into one.
type storageView struct {
	st     *storage
	offset int // in elements
	numel  int
}

// tensorRef is a tensor as pickled: a view of a storage with offset, size
// and stride in elements.
type tensorRef struct {
	view   *storageView
	offset int
	size   []int
	stride []int
}

// decoder holds the state shared by the pickle hooks of one file.
type decoder struct {
	storages map[string]*storage
	order    []string // storage keys in first-reference order
	budget   int      // bytes of storage data still allowed
	legacy   bool     // persistent ids carry view metadata
	// loadStorage reads a storage's bytes as soon as it is first referenced
	// (zip format). Nil for the legacy format, whose bytes follow the pickle.
	loadStorage func(st *storage) error
}

func newDecoder(budget int) *decoder {
	return &decoder{storages: make(map[string]*storage), budget: budget}
}

// unpickle checks and decodes the pickle at the start of data and returns
// the object and the pickle's length. d may be nil for pickles without
// tensors.
func unpickle(data []byte, d *decoder) (any, int, error) {
	n, err := checkPickle(data)
	if err != nil {
		return nil, 0, err
	}
	u := pickle.NewUnpickler(bytes.NewReader(data[:n]))
	u.FindClass = func(module, name string) (any, error) {
		return findClass(module, name)
	}
	if d != nil {
		u.PersistentLoad = d.persistentLoad
	}
	v, err := u.Load()
	if err != nil {
		return nil, 0, err
	}
	return v, n, nil
}

// findClass resolves the Python globals a state_dict pickle may name; the
// unpickler itself handles collections.OrderedDict. Anything else is refused.
func findClass(module, name string) (any, error) {
	switch module {
	case "torch._utils":
		switch name {
		case "_rebuild_tensor_v2":
			return rebuildTensor{v2: true}, nil
		case "_rebuild_tensor":
			return rebuildTensor{}, nil
		case "_rebuild_parameter", "_rebuild_parameter_with_state":
			return rebuildParameter{}, nil
		}
	case "torch":
		if dt, ok := storageTypes[name]; ok {
			return &storageClass{dt}, nil
		}
	}
	return nil, fmt.Errorf("unsupported Python object %.64q.%.64q", module, name)
}

// persistentLoad resolves a storage persistent id:
// ('storage', class, key, location, numel) in the zip format, with a sixth
// element, view metadata (None or (view_key, offset, size)), in the legacy one.
func (d *decoder) persistentLoad(id any) (any, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() < 5 {
		return nil, fmt.Errorf("persistent id is %s, want a storage tuple", typeName(id))
	}
	if s, _ := t.Get(0).(string); s != "storage" {
		return nil, fmt.Errorf("persistent id of unsupported kind %s", typeName(t.Get(0)))
	}
	cls, ok := t.Get(1).(*storageClass)
	if !ok {
		return nil, fmt.Errorf("storage class is %s", typeName(t.Get(1)))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, fmt.Errorf("storage key is %s, want a string", typeName(t.Get(2)))
	}
	numel, ok := toInt(t.Get(4))
	if !ok {
		return nil, fmt.Errorf("storage %.64q has an element count that is %s", key, typeName(t.Get(4)))
	}
	if numel < 0 || numel > math.MaxInt/cls.dt.size {
		return nil, fmt.Errorf("storage %.64q has invalid element count %d", key, numel)
	}
	st, seen := d.storages[key]
	if seen {
		if st.dt != cls.dt || st.numel != numel {
			return nil, fmt.Errorf("storage %.64q declared twice with different types or sizes", key)
		}
	} else {
		nbytes := numel * cls.dt.size
		if nbytes > d.budget {
			return nil, fmt.Errorf("storage %.64q needs %d bytes, more than the file holds (truncated or corrupt)", key, nbytes)
		}
		d.budget -= nbytes
		st = &storage{key: key, dt: cls.dt, numel: numel}
		d.storages[key] = st
		d.order = append(d.order, key)
		if d.loadStorage != nil {
			if err := d.loadStorage(st); err != nil {
				return nil, err
			}
		}
	}
	view := &storageView{st: st, numel: numel}
	if d.legacy && t.Len() >= 6 && t.Get(5) != nil {
		vm, ok := t.Get(5).(*types.Tuple)
		if !ok || vm.Len() != 3 {
			return nil, fmt.Errorf("storage %.64q has invalid view metadata", key)
		}
		off, ok1 := toInt(vm.Get(1))
		size, ok2 := toInt(vm.Get(2))
		if !ok1 || !ok2 || off < 0 || size < 0 || off > numel || size > numel-off {
			return nil, fmt.Errorf("storage %.64q has a view outside its bounds", key)
		}
		view = &storageView{st: st, offset: off, numel: size}
	}
	return view, nil
}

// rebuildTensor implements torch._utils._rebuild_tensor(storage, offset,
// size, stride) and _rebuild_tensor_v2(storage, offset, size, stride,
// requires_grad, backward_hooks[, metadata]).
type rebuildTensor struct{ v2 bool }

func (r rebuildTensor) Call(args ...any) (any, error) {
	if (r.v2 && len(args) != 6 && len(args) != 7) || (!r.v2 && len(args) != 4) {
		return nil, fmt.Errorf("tensor rebuilt with %d arguments", len(args))
	}
	view, ok := args[0].(*storageView)
	if !ok {
		return nil, fmt.Errorf("tensor storage is %s", typeName(args[0]))
	}
	off, ok := toInt(args[1])
	if !ok || off < 0 {
		return nil, fmt.Errorf("tensor has invalid storage offset")
	}
	size, err := intSlice(args[2])
	if err != nil {
		return nil, fmt.Errorf("tensor size: %w", err)
	}
	stride, err := intSlice(args[3])
	if err != nil {
		return nil, fmt.Errorf("tensor stride: %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("tensor has %d sizes but %d strides", len(size), len(stride))
	}
	return &tensorRef{view: view, offset: off, size: size, stride: stride}, nil
}

// rebuildParameter implements torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks[, state]): an nn.Parameter is its tensor.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("parameter rebuilt without data")
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("parameter data is %s", typeName(args[0]))
	}
	return t, nil
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case *big.Int:
		if x.IsInt64() && x.Int64() >= math.MinInt && x.Int64() <= math.MaxInt {
			return int(x.Int64()), true
		}
	}
	return 0, false
}

func intSlice(v any) ([]int, error) {
	var items []any
	switch x := v.(type) {
	case *types.Tuple:
		items = *x
	case *types.List:
		items = *x
	default:
		return nil, fmt.Errorf("got %s, want a tuple of ints", typeName(v))
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, ok := toInt(it)
		if !ok {
			return nil, fmt.Errorf("element %d is %s, want an int", i, typeName(it))
		}
		out[i] = n
	}
	return out, nil
}

// typeName describes a decoded value for error messages without printing
// it (hostile values may be huge).
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case *tensorRef:
		return "a tensor"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *types.Tuple:
		return "a tuple"
	case *types.List:
		return "a list"
	case string:
		return "a string"
	case int, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case bool:
		return "a bool"
	}
	return fmt.Sprintf("a %T", v)
}
