package bronze

import (
	"sync"

	kzstd "github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// zstdCodec is parquet-go's zstd codec at its fastest level, writing the same bytes, with
// encoders that hold memory in proportion to the pages they compress. parquet-go's encoders
// take klauspost's defaults: a 4 MiB window, and on the first page longer than a block (64 KiB)
// a history buffer of twice the window, 8 MiB, kept for as long as the pooled encoder lives. A
// long-running stack lands pages all the time, so one or two of those stayed in its heap (16
// MiB of `fin up`'s 45 MB live heap at minute 5), and the collector's headroom doubled them in
// RSS. A bronze page is about parquet-go's page buffer (256 KiB), so pages up to smallWindow
// go to encoders with that window and klauspost's low-memory buffers (a history of the window
// and one block); longer pages to encoders with the default window, low-memory too. Within a
// frame no match can reach further back than the input's start, so a window at least the
// input's length finds the same matches, and a single-segment frame does not record its
// window: the bytes are parquet-go's (TestZstdCodecWritesParquetGosBytes).
type zstdCodec struct {
	small, large sync.Pool // *kzstd.Encoder, for pages up to smallWindow and beyond it
	decode       zstd.Codec
}

// smallWindow is the window of the encoders of ordinary pages: four page buffers.
const smallWindow = 1 << 20

func (c *zstdCodec) String() string { return c.decode.String() }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode compresses src as parquet-go's zstd.Codec{Level: SpeedFastest} would.
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	pool, window := &c.small, smallWindow
	if len(src) > smallWindow {
		pool, window = &c.large, 0
	}
	e, _ := pool.Get().(*kzstd.Encoder)
	if e == nil {
		var err error
		if e, err = newEncoder(window); err != nil {
			return nil, err
		}
	}
	defer pool.Put(e)
	return e.EncodeAll(src, dst[:0]), nil
}

// Decode is parquet-go's.
func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) { return c.decode.Decode(dst, src) }

// newEncoder makes an encoder with parquet-go's options, the window (0: the level's default),
// and low-memory buffers. The window comes after the level, which would reset it.
func newEncoder(window int) (*kzstd.Encoder, error) {
	opts := []kzstd.EOption{
		kzstd.WithEncoderConcurrency(1),
		kzstd.WithEncoderLevel(kzstd.SpeedFastest),
		kzstd.WithZeroFrames(true),
		kzstd.WithEncoderCRC(false),
		kzstd.WithLowerEncoderMem(true),
	}
	if window > 0 {
		opts = append(opts, kzstd.WithWindowSize(window))
	}
	return kzstd.NewWriter(nil, opts...)
}
