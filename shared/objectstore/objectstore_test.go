package objectstore

import "testing"

func TestOpenEndpoints(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantURL string // "" means Open must refuse the configuration
	}{
		{Config{}, "https://s3.us-east-1.amazonaws.com"},
		{Config{Region: "eu-west-1"}, "https://s3.eu-west-1.amazonaws.com"},
		{Config{Endpoint: "http://127.0.0.1:9000", AccessKey: "k", SecretKey: "s"}, "http://127.0.0.1:9000"},
		{Config{Endpoint: "https://s3.example.com/"}, "https://s3.example.com"},
		{Config{Endpoint: "127.0.0.1:9000"}, ""},
		{Config{Endpoint: "ftp://127.0.0.1:9000"}, ""},
		{Config{Endpoint: "http://127.0.0.1:9000/lake"}, ""},
	} {
		c, err := Open(tc.cfg)
		switch {
		case tc.wantURL == "" && err == nil:
			t.Errorf("Open(%+v) accepted it; want an error naming the endpoint", tc.cfg)
		case tc.wantURL != "" && err != nil:
			t.Errorf("Open(%+v): %v", tc.cfg, err)
		case err == nil && c.EndpointURL().String() != tc.wantURL:
			t.Errorf("Open(%+v) endpoint %s, want %s", tc.cfg, c.EndpointURL(), tc.wantURL)
		}
	}
}
