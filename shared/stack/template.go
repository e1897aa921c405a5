package stack

import (
	"maps"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/eventsource"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// localParams are the template parameters of the local stack: the MSK variant of the landing,
// on a local cluster ARN.
var localParams = map[string]string{"Stage": "local", "MskClusterArn": "arn:aws:kafka:us-east-1:000000000000:cluster/local/embedded"}

// LoadTemplate reads a SAM template as `fin up` runs it, held to the rules AWS enforces on deploy
// (lambdalocal.LoadTemplate): a template AWS would refuse stops the stack before anything starts.
// `fin up --check` runs exactly this. params add to (and override) the local stack's template
// parameters.
func LoadTemplate(path string, params map[string]string) (*samtemplate.Template, error) {
	all := maps.Clone(localParams)
	maps.Copy(all, params)
	return lambdalocal.LoadTemplate(path, all)
}

// LoadAPITemplate is LoadTemplate with the JWT parameters taken from the API's own auth settings
// (the process environment, or the development secret at devSecretPath): the emulated authorizer
// and the API then check one issuer and audience, as in AWS, where both come from the stack's
// parameters. params add other parameters (as LoadTemplate's).
func LoadAPITemplate(path, devSecretPath string, params map[string]string) (*samtemplate.Template, api.AuthConfig, error) {
	auth, err := api.AuthConfigFromEnv(settings.ForFunction(settings.API, settings.Process()).Get, devSecretPath)
	if err != nil {
		return nil, api.AuthConfig{}, err
	}
	all := map[string]string{"JwtIssuer": auth.Issuer, "JwtAudience": auth.Audience}
	maps.Copy(all, params)
	tpl, err := LoadTemplate(path, all)
	return tpl, auth, err
}

// groupsByTopic is, for the landed gate, which consumer groups land each topic.
func groupsByTopic(mappings []eventsource.Config) map[string][]string {
	out := map[string][]string{}
	for _, m := range mappings {
		out[m.Topic] = append(out[m.Topic], m.GroupID)
	}
	return out
}
