package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Limits applied by checkPickle to arguments whose decoding cost grows
// faster than linearly in gopickle (big integers are built a byte at a time).
const (
	maxLongBytes  = 64  // LONG1/LONG4 payload
	maxNumberLine = 256 // INT/LONG/FLOAT text argument
)

var errPickleTruncated = fmt.Errorf("pickle stream ends early: %w", io.ErrUnexpectedEOF)

// checkPickle walks the opcodes of the pickle at the start of data without
// building anything and returns its length, up to and including STOP. It
// rejects any length-prefixed argument that does not fit in data, so that
// gopickle, which allocates whatever length a stream declares before reading
// it, never allocates more than the input holds.
func checkPickle(data []byte) (int, error) {
	sc := &pickleScanner{data: data}
	for {
		if sc.i >= len(data) {
			return 0, errPickleTruncated
		}
		op := data[sc.i]
		sc.i++
		if op == '.' { // STOP
			return sc.i, nil
		}
		if err := sc.argument(op); err != nil {
			return 0, err
		}
	}
}

// pickleScanner is checkPickle's position in the stream.
type pickleScanner struct {
	data []byte
	i    int
}

// argument skips the argument of opcode op, checking that it fits.
func (sc *pickleScanner) argument(op byte) error {
	switch op {
	case 'N', 0x88, 0x89, ')', ']', '}', 0x8f, '(', '0', '1', '2',
		'a', 'e', 's', 'u', 'b', 't', 0x85, 0x86, 0x87, 'l', 'd',
		'o', 0x81, 0x92, 'R', 'Q', 0x93, 0x94, 0x90, 0x91, 0x97, 0x98:
		return nil // no argument
	case 0x80, 'K', 'h', 'q', 0x82: // PROTO, BININT1, BINGET, BINPUT, EXT1
		return sc.skip(1)
	case 'M', 0x83: // BININT2, EXT2
		return sc.skip(2)
	case 'J', 'j', 'r', 0x84: // BININT, LONG_BINGET, LONG_BINPUT, EXT4
		return sc.skip(4)
	case 'G': // BINFLOAT
		return sc.skip(8)
	case 0x95: // FRAME: the frame's opcodes follow inline
		n, err := sc.length(8)
		if err == nil && n > uint64(len(sc.data)-sc.i) {
			err = errPickleTruncated
		}
		return err
	case 0x8a: // LONG1
		return sc.long(1)
	case 0x8b: // LONG4
		return sc.long(4)
	case 'U', 'C', 0x8c: // SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE
		return sc.skipLength(1)
	case 'T', 'X', 'B': // BINSTRING, BINUNICODE, BINBYTES
		return sc.skipLength(4)
	case 0x8d, 0x8e, 0x96: // BINUNICODE8, BINBYTES8, BYTEARRAY8
		return sc.skipLength(8)
	case 'I', 'L', 'F': // INT, LONG, FLOAT
		return sc.line(maxNumberLine)
	case 'S', 'V', 'P', 'g', 'p': // STRING, UNICODE, PERSID, GET, PUT
		return sc.line(0)
	case 'c', 'i': // GLOBAL, INST
		if err := sc.line(0); err != nil {
			return err
		}
		return sc.line(0)
	}
	return fmt.Errorf("unknown pickle opcode 0x%02x at offset %d", op, sc.i-1)
}

func (sc *pickleScanner) skip(n uint64) error {
	if n > uint64(len(sc.data)-sc.i) {
		return errPickleTruncated
	}
	sc.i += int(n)
	return nil
}

// length reads an n-byte little-endian length prefix and skips it.
func (sc *pickleScanner) length(n int) (uint64, error) {
	if len(sc.data)-sc.i < n {
		return 0, errPickleTruncated
	}
	var v uint64
	switch n {
	case 1:
		v = uint64(sc.data[sc.i])
	case 4:
		v = uint64(binary.LittleEndian.Uint32(sc.data[sc.i:]))
	case 8:
		v = binary.LittleEndian.Uint64(sc.data[sc.i:])
	}
	sc.i += n
	return v, nil
}

// skipLength skips an argument with an n-byte length prefix.
func (sc *pickleScanner) skipLength(n int) error {
	v, err := sc.length(n)
	if err != nil {
		return err
	}
	return sc.skip(v)
}

// long skips a LONG1 or LONG4 integer, refusing one too big to build cheaply.
func (sc *pickleScanner) long(size int) error {
	n, err := sc.length(size)
	if err != nil {
		return err
	}
	if n > maxLongBytes {
		return fmt.Errorf("pickled integer of %d bytes", n)
	}
	return sc.skip(n)
}

// line skips a newline-terminated argument of at most max bytes (0: any).
func (sc *pickleScanner) line(max int) error {
	j := bytes.IndexByte(sc.data[sc.i:], '\n')
	if j < 0 {
		return errPickleTruncated
	}
	if max > 0 && j > max {
		return fmt.Errorf("numeric pickle argument of %d bytes", j)
	}
	sc.i += j + 1
	return nil
}
