package styles

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/styleproxy/styleproxy/engine"
)

// targets.bin: the 8-byte magic, the number of layers (uint32), each layer's channel count C
// (uint32), each layer's C×C Gram matrix (row-major float32), then the CRC-32C of everything
// before it. All little-endian.
var targetsMagic = []byte("SPGRAMS1")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxGramChannels bounds C when reading, so a damaged header cannot ask for gigabytes.
const maxGramChannels = 4096

// EncodeTargets is the targets.bin form of st, for any Store that keeps styles as bytes.
func EncodeTargets(st engine.StyleTargets) ([]byte, error) {
	n := len(targetsMagic) + 4 + 4*len(st) + 4
	for i, g := range st {
		if g.C <= 0 || g.C > maxGramChannels || len(g.Data) != g.C*g.C {
			return nil, fmt.Errorf("styles: target %d: %d values for C=%d", i, len(g.Data), g.C)
		}
		n += 4 * len(g.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, targetsMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st)))
	for _, g := range st {
		b = binary.LittleEndian.AppendUint32(b, uint32(g.C))
	}
	for _, g := range st {
		for _, v := range g.Data {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// DecodeTargets checks and reads what EncodeTargets wrote.
func DecodeTargets(b []byte) (engine.StyleTargets, error) {
	var st engine.StyleTargets
	fail := func(format string, args ...any) (engine.StyleTargets, error) {
		return st, fmt.Errorf("targets: "+format, args...)
	}
	head := len(targetsMagic) + 4 + 4*len(st)
	if len(b) < head+4 {
		return fail("%d bytes, too short", len(b))
	}
	if !bytes.Equal(b[:len(targetsMagic)], targetsMagic) {
		return fail("bad magic")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fail("checksum mismatch (%d bytes)", len(b))
	}
	if n := binary.LittleEndian.Uint32(b[len(targetsMagic):]); n != uint32(len(st)) {
		return fail("%d layers, want %d", n, len(st))
	}
	want := head
	for i := range st {
		c := binary.LittleEndian.Uint32(b[len(targetsMagic)+4+4*i:])
		if c == 0 || c > maxGramChannels {
			return fail("layer %d has %d channels", i, c)
		}
		st[i].C = int(c)
		want += 4 * int(c) * int(c)
	}
	if len(body) != want {
		return fail("%d bytes, want %d", len(b), want+4)
	}
	off := head
	for i := range st {
		d := make([]float32, st[i].C*st[i].C)
		for j := range d {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fail("layer %d holds %v", i, v)
			}
			d[j] = v
			off += 4
		}
		st[i].Data = d
	}
	return st, nil
}
