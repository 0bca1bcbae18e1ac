package imaging

/*
#cgo pkg-config: vips
#include <stdlib.h>
#include <vips/vips.h>

// blockLoaders keeps libvips from ever running a loader for a format Decode does not accept, even
// on a code path that skips the sniffing: first every loader flagged untrusted, then every loader
// but the accepted ones.
static void blockLoaders(void) {
	vips_block_untrusted_set(TRUE);
	vips_operation_block_set("VipsForeignLoad", TRUE);
	vips_operation_block_set("VipsForeignLoadJpeg", FALSE);
	vips_operation_block_set("VipsForeignLoadPng", FALSE);
	vips_operation_block_set("VipsForeignLoadWebp", FALSE);
	vips_operation_block_set("VipsForeignLoadNsgif", FALSE);
	vips_operation_block_set("VipsForeignLoadTiff", FALSE);
	vips_operation_block_set("VipsForeignLoadHeif", FALSE);
}

// strictDecode loads buf failing on the first warning (a truncated or corrupt file) and decodes
// every pixel. It returns 0, or -1 with the message in libvips's error buffer.
static int strictDecode(const void *buf, size_t len) {
	VipsImage *im = vips_image_new_from_buffer(buf, len, "", "fail_on", VIPS_FAIL_ON_WARNING, NULL);
	if (im == NULL) {
		return -1;
	}
	double avg;
	int r = vips_avg(im, &avg, NULL);
	g_object_unref(im);
	return r;
}

static char *takeError(void) {
	char *s = g_strdup(vips_error_buffer());
	vips_error_clear();
	return s;
}
*/
import "C"

import (
	"errors"
	"runtime"
	"unsafe"
)

// blockLoaders is called once, when libvips starts.
func blockLoaders() { C.blockLoaders() }

// strictDecode decodes every pixel of data with libvips's fail-on-warning option, which govips
// sets only for JPEG and PNG: a GIF, WebP, TIFF or HEIF cut short would otherwise decode with
// its missing part filled in. The error carries libvips's message.
func strictDecode(data []byte) error {
	if len(data) == 0 {
		return errors.New("empty input")
	}
	defer runtime.KeepAlive(data)
	if C.strictDecode(unsafe.Pointer(&data[0]), C.size_t(len(data))) == 0 {
		return nil
	}
	msg := C.takeError()
	defer C.g_free(C.gpointer(msg))
	return errors.New(C.GoString(msg))
}
