package s3local

import (
	"sort"

	"github.com/johannesboyne/gofakes3"
)

// ListBucket pages a listing as S3 does: at most max-keys entries (1,000 unless asked for fewer)
// after the marker (V1's marker, V2's start-after or continuation token), and IsTruncated when
// more follow. gofakes3's file backend lists everything in one answer, which would let a client
// that never pages pass here and fail on S3 past 1,000 objects.
func (n *notifying) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	n.writes.RLock() // see notifying.writes
	defer n.writes.RUnlock()
	all, err := n.Backend.ListBucket(bucket, prefix, gofakes3.ListBucketPage{})
	if err != nil || page.IsEmpty() { // gofakes3's own calls (is a bucket empty?) want it all
		return all, err
	}
	return pageOf(all, page), nil
}

// pageOf cuts one page out of a whole listing; objects and common prefixes count alike, in key
// order, as S3 counts them.
func pageOf(all *gofakes3.ObjectList, page gofakes3.ListBucketPage) *gofakes3.ObjectList {
	type entry struct {
		key     string
		content *gofakes3.Content
	}
	var entries []entry
	for _, c := range all.Contents {
		entries = append(entries, entry{key: c.Key, content: c})
	}
	for _, p := range all.CommonPrefixes {
		entries = append(entries, entry{key: p.Prefix})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	limit := min(page.MaxKeys, gofakes3.MaxBucketKeys) // the request's, clamped by gofakes3 to 0..1000
	out := gofakes3.NewObjectList()
	taken := 0
	for _, e := range entries {
		if page.HasMarker && e.key <= page.Marker {
			continue
		}
		if taken == int(limit) {
			out.IsTruncated = true
			break
		}
		if e.content != nil {
			out.Add(e.content)
		} else {
			out.AddPrefix(e.key)
		}
		out.NextMarker = e.key
		taken++
	}
	if !out.IsTruncated {
		out.NextMarker = ""
	}
	return out
}
