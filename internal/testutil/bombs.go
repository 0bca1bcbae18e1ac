package testutil

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
)

// BombPNG is a valid PNG whose header declares w×h 1-bit greyscale pixels, tiny on the wire and
// huge once decoded: a decompression bomb. It holds rows rows of zeros, streamed through the
// compressor so neither the test nor the file holds the pixels; with rows < h the header lies
// about the data behind it.
func BombPNG(w, h, rows int) []byte {
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 1, 0 // bit depth 1, greyscale
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed) // a valid level: no error
	row := make([]byte, 1+(w+7)/8)                   // filter byte 0 and zero pixels
	for range rows {
		zw.Write(row)
	}
	zw.Close()
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	out.Write(PNGChunk("IHDR", ihdr[:]))
	out.Write(PNGChunk("IDAT", z.Bytes()))
	out.Write(PNGChunk("IEND", nil))
	return out.Bytes()
}

// PNGChunk is one PNG chunk: length, type, data and CRC.
func PNGChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}
