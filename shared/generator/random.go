package generator

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
	"unicode"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/google/uuid"
)

// source is every random choice of one run, seeded so the same seed gives the same data.
// Money never passes through a float: amounts are drawn as a float variate and turned into whole
// cents at once.
type source struct {
	r    *rand.Rand
	fake *gofakeit.Faker
}

func newSource(seed int64, stream uint64) *source {
	return &source{
		r:    rand.New(rand.NewPCG(uint64(seed), stream)),
		fake: gofakeit.New(uint64(seed) ^ stream),
	}
}

// uuidAt draws a UUIDv7 (RFC 9562) of the instant at from the seeded stream: what the database's
// uuidv7() would have given a row written then (48 bits of Unix milliseconds, the sub-millisecond
// fraction in 12 bits, 62 random bits), so a generated history's ids sort by creation time as
// live ones do.
func (s *source) uuidAt(at time.Time) uuid.UUID {
	var u uuid.UUID
	ns := at.UnixNano()
	head := uint64(ns/1e6)<<16 | 0x7000 | uint64(ns%1e6*4096/1e6)
	lo := s.r.Uint64()
	binary.BigEndian.PutUint64(u[:8], head)
	binary.BigEndian.PutUint64(u[8:], lo)
	u[8] = (u[8] & 0x3f) | 0x80
	return u
}

// amount draws whole cents from a log-normal distribution, capped at max and at least one cent.
func (s *source) amount(a Amount) int64 {
	v := float64(a.medianCents) * math.Exp(a.Spread*s.r.NormFloat64())
	c := int64(math.Round(v))
	return max(1, min(c, a.maxCents))
}

// skewed picks an index in [0, n) with a heavy head: a few accounts are very active, as in life.
func (s *source) skewed(n int) int {
	u := s.r.Float64()
	return min(n-1, int(float64(n)*u*u*u))
}

// weighted is a fixed choice among keys in sorted order (map order would break determinism).
type weighted struct {
	keys []string
	cum  []float64
}

func newWeighted(w map[string]float64) weighted {
	var out weighted
	total := 0.0
	for _, k := range sortedKeys(w) {
		if w[k] <= 0 {
			continue
		}
		total += w[k]
		out.keys = append(out.keys, k)
		out.cum = append(out.cum, total)
	}
	return out
}

func (w weighted) pick(s *source) string {
	x := s.r.Float64() * w.cum[len(w.cum)-1]
	for i, c := range w.cum {
		if x < c {
			return w.keys[i]
		}
	}
	return w.keys[len(w.keys)-1]
}

// person is a synthetic customer's fields.
type person struct {
	first, last, email, street, city, zip, country string
}

var emailDomains = []string{"example.com", "example.org", "example.net", "mail.example"}

// person draws a customer. n makes the email unique within one run.
func (s *source) person(n int64) person {
	first, last := s.fake.FirstName(), s.fake.LastName()
	return person{
		first: first, last: last,
		email:   s.email(first, last, n),
		street:  s.fake.Street(),
		city:    s.fake.City(),
		zip:     s.fake.Zip(),
		country: strings.ToUpper(s.fake.CountryAbr()),
	}
}

func (s *source) email(first, last string, n int64) string {
	return fmt.Sprintf("%s.%s.%d@%s", localPart(first), localPart(last), n, emailDomains[s.r.IntN(len(emailDomains))])
}

// localPart keeps the letters and digits of a name, lower-cased, for an email address.
func localPart(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}
