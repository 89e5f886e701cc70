package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/authd/authd/internal/config"
)

func TestFromEnv_Defaults(t *testing.T) {
	c, err := config.FromEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenTTL != 15*time.Minute || c.RefreshReuseWindow != 10*time.Second || c.AccessTokenAlg != "ES256" || !c.Dev() || c.LogFormat != "console" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestFromEnv_BadValuesNameTheVariable(t *testing.T) {
	key32 := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, padded base64
	for _, tc := range []struct {
		name, env, wantVar string
	}{
		{"DurationBanana", "AUTHD_ACCESS_TOKEN_TTL=banana", "AUTHD_ACCESS_TOKEN_TTL"},
		{"NegativeDuration", "AUTHD_REFRESH_TOKEN_TTL=-1h", "AUTHD_REFRESH_TOKEN_TTL"},
		{"MalformedDatabaseURL", "AUTHD_DATABASE_URL=postgres://%zz", "AUTHD_DATABASE_URL"},
		{"ShortSecretsKey", "AUTHD_SECRETS_KEY=c2hvcnQ=", "AUTHD_SECRETS_KEY"},
		{"NotBase64SecretsKey", "AUTHD_SECRETS_KEY=!!!", "AUTHD_SECRETS_KEY"},
		{"IntNotNumber", "AUTHD_BCRYPT_COST=ten", "AUTHD_BCRYPT_COST"},
		{"BcryptOutOfRange", "AUTHD_BCRYPT_COST=40", "AUTHD_BCRYPT_COST"},
		{"UnknownEnv", "AUTHD_ENV=staging", "AUTHD_ENV"},
		{"IssuerTrailingSlash", "AUTHD_ISSUER=https://id.example.com/", "AUTHD_ISSUER"},
		{"WildcardCORS", "AUTHD_CORS_ORIGINS=*", "AUTHD_CORS_ORIGINS"},
		{"BadSMTPScheme", "AUTHD_SMTP_URL=http://mail:25", "AUTHD_SMTP_URL"},
		{"WebhookWithoutSecret", "AUTHD_WEBHOOK_URL=https://hooks.example.com/x", "AUTHD_WEBHOOK_SECRET"},
		{"PrepublishTooLong", "AUTHD_KEY_PREPUBLISH=1000h", "AUTHD_KEY_PREPUBLISH"},
		{"HTTPIssuerInProduction", "AUTHD_ENV=production\nAUTHD_ISSUER=http://id.example.com\nAUTHD_SECRETS_KEY=" + key32, "AUTHD_ISSUER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.FromEnv(strings.Split(tc.env, "\n"))
			if err == nil {
				t.Fatalf("%s accepted", tc.env)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.wantVar+":") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line starting with %s:", msg, tc.wantVar)
			}
		})
	}
}

func TestFromEnv_SecretsKeyEncodings(t *testing.T) {
	for _, k := range []string{
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", // std padded
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",  // unpadded
		"_-_-MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmM",  // URL-safe unpadded
	} {
		c, err := config.FromEnv([]string{"AUTHD_SECRETS_KEY=" + k})
		if err != nil || len(c.Key()) != 32 {
			t.Fatalf("%s: err %v", k, err)
		}
	}
}

func TestRequireProduction(t *testing.T) {
	key := "AUTHD_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	for _, tc := range []struct {
		name    string
		env     []string
		wantVar string
	}{
		{"NoDatabase", []string{"AUTHD_ENV=production", "AUTHD_ISSUER=https://id.example.com", key}, "AUTHD_DATABASE_URL"},
		{"NoSecretsKey", []string{"AUTHD_ENV=production", "AUTHD_ISSUER=https://id.example.com", "AUTHD_DATABASE_URL=postgres://a@h/db"}, "AUTHD_SECRETS_KEY"},
		{"NoIssuer", []string{"AUTHD_ENV=production", "AUTHD_DATABASE_URL=postgres://a@h/db", key}, "AUTHD_ISSUER"},
		{"OK", []string{"AUTHD_ENV=production", "AUTHD_ISSUER=https://id.example.com", "AUTHD_DATABASE_URL=postgres://a@h/db", key}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.FromEnv(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			err = c.RequireProduction()
			if tc.wantVar == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantVar+":") {
				t.Fatalf("err = %v, want one naming %s", err, tc.wantVar)
			}
		})
	}
}

// The README's configuration table must list every variable.
func TestREADME_ListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Vars() {
		if !strings.Contains(string(b), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s", v.Name)
		}
	}
}

// docker-compose.yml cannot be run here (no Docker engine); parse it and check
// every AUTHD_* variable it sets is one authd reads.
func TestDockerCompose_SetsOnlyRealVariables(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   map[string]any    `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	authd, ok := compose.Services["authd"]
	if !ok || authd.Build == nil {
		t.Fatal("docker-compose.yml: no authd service built from the Dockerfile")
	}
	for _, need := range []string{"AUTHD_DATABASE_URL", "AUTHD_ISSUER", "AUTHD_SECRETS_KEY", "AUTHD_SMTP_URL"} {
		if _, ok := authd.Environment[need]; !ok {
			t.Errorf("authd service does not set %s", need)
		}
	}
	for name, svc := range compose.Services {
		for k := range svc.Environment {
			if strings.HasPrefix(k, "AUTHD_") && !known[k] {
				t.Errorf("service %s sets %s, which authd does not read", name, k)
			}
		}
		for dep := range svc.DependsOn {
			if _, ok := compose.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
	}
	// The production environment the compose file describes must pass validation.
	var env []string
	for k, v := range authd.Environment {
		if strings.HasPrefix(v, "${AUTHD_SECRETS_KEY") {
			v = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		}
		env = append(env, k+"="+v)
	}
	c, err := config.FromEnv(env)
	if err != nil {
		t.Fatalf("compose environment rejected: %v", err)
	}
	if err := c.RequireProduction(); err != nil {
		t.Fatalf("compose environment incomplete: %v", err)
	}
}
