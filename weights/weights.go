// Package weights loads and fetches the ImageNet-pretrained SqueezeNet 1.1 feature weights the style-transfer engine runs on.
//
// The weights are torchvision's squeezenet1_1 state_dict, as published at
// [OfficialURL] or as written by torch.save in either of PyTorch's two formats
// (the legacy pre-1.6 stream and the current zip archive). Only the
// convolutional "features.*" tensors are kept; "classifier.*" tensors are
// ignored. [Load] decodes a checkpoint, [Resolve] finds one on disk and
// [Fetch] downloads one safely.
package weights

import (
	"errors"
	"fmt"
)

// MaxFileSize bounds the size of a checkpoint file, both when loading and
// when downloading. The official checkpoint is about 4.7 MB.
const MaxFileSize = 64 << 20

var (
	// ErrNotCheckpoint is matched (errors.Is) by errors for files that are
	// not decodable PyTorch checkpoints: empty, truncated, random bytes,
	// unsupported or corrupt encodings.
	ErrNotCheckpoint = errors.New("not a PyTorch checkpoint")

	// ErrNotSqueezeNet is matched (errors.Is) by errors for checkpoints that
	// decode but do not hold SqueezeNet 1.1 feature weights: a missing or
	// unexpected tensor, a wrong shape, a non-floating-point tensor.
	ErrNotSqueezeNet = errors.New("not SqueezeNet 1.1 feature weights")
)

// Tensor is a dense float32 tensor in row-major order, in torchvision's
// layout (convolution weights are [out, in, kh, kw]).
type Tensor struct {
	Shape []int
	Data  []float32
}

// Checkpoint holds the validated SqueezeNet 1.1 feature tensors of one file.
type Checkpoint struct {
	// Tensors maps torchvision names ("features.0.weight",
	// "features.3.squeeze.weight", "features.3.expand1x1.bias", ...) to
	// tensors. It holds exactly the tensors listed by Expected.
	Tensors map[string]*Tensor
	// Hash is the lowercase hex SHA-256 of the file's bytes.
	Hash string
	// Path is the file the checkpoint was loaded from.
	Path string
}

// FireSpec describes one fire module of SqueezeNet 1.1's feature extractor.
type FireSpec struct {
	Index     int // position in torchvision's features Sequential
	In        int // input channels
	Squeeze   int // squeeze (1x1) output channels
	Expand1x1 int // expand1x1 output channels
	Expand3x3 int // expand3x3 output channels
}

// fireModules are the eight fire modules of SqueezeNet 1.1, in order.
//
// In torchvision's squeezenet1_1, features.0 is a 3x3 stride-2 convolution
// from 3 to 64 channels without padding, followed by a ReLU; features.2, 5
// and 8 are 3x3 stride-2 max-pools with ceil_mode. In a fire module, ReLU
// follows the squeeze and each expand convolution; expand3x3 has padding 1,
// and the module's output is expand1x1's channels followed by expand3x3's.
var fireModules = []FireSpec{
	{3, 64, 16, 64, 64},
	{4, 128, 16, 64, 64},
	{6, 128, 32, 128, 128},
	{7, 256, 32, 128, 128},
	{9, 256, 48, 192, 192},
	{10, 384, 48, 192, 192},
	{11, 384, 64, 256, 256},
	{12, 512, 64, 256, 256},
}

// TensorSpec names one tensor a checkpoint must hold and its shape.
type TensorSpec struct {
	Name  string
	Shape []int
}

// Expected returns the 50 tensors of SqueezeNet 1.1's features in
// torchvision order, each with its required shape.
func Expected() []TensorSpec {
	specs := []TensorSpec{
		{"features.0.weight", []int{64, 3, 3, 3}},
		{"features.0.bias", []int{64}},
	}
	for _, f := range fireModules {
		p := fmt.Sprintf("features.%d.", f.Index)
		specs = append(specs,
			TensorSpec{p + "squeeze.weight", []int{f.Squeeze, f.In, 1, 1}},
			TensorSpec{p + "squeeze.bias", []int{f.Squeeze}},
			TensorSpec{p + "expand1x1.weight", []int{f.Expand1x1, f.Squeeze, 1, 1}},
			TensorSpec{p + "expand1x1.bias", []int{f.Expand1x1}},
			TensorSpec{p + "expand3x3.weight", []int{f.Expand3x3, f.Squeeze, 3, 3}},
			TensorSpec{p + "expand3x3.bias", []int{f.Expand3x3}},
		)
	}
	return specs
}

// formatError reports a file that cannot be decoded as a PyTorch checkpoint.
type formatError struct {
	path   string
	detail string
	err    error
}

func (e *formatError) Error() string {
	msg := "weights: " + e.path + " is not a PyTorch checkpoint: " + e.detail
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *formatError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrNotCheckpoint}
	}
	return []error{ErrNotCheckpoint, e.err}
}

// layoutError reports a checkpoint whose contents are not SqueezeNet 1.1's.
type layoutError struct{ msg string }

func (e *layoutError) Error() string        { return e.msg }
func (e *layoutError) Is(target error) bool { return target == ErrNotSqueezeNet }

func layoutErrorf(format string, args ...any) error {
	return &layoutError{msg: "weights: " + fmt.Sprintf(format, args...)}
}
