package openai

import (
	"context"

	"github.com/gavel-gw/gavel/adapters"
)

var _ adapters.ModelLister = (*Provider)(nil)

// maxModelsBody bounds a model listing: OpenAI's own is about 10 KB; a server hosting
// thousands of fine-tunes stays far below this.
const maxModelsBody = 4 << 20

// modelList is GET /v1/models as OpenAI and compatible servers answer it.
type modelList struct {
	Data []struct {
		ID      string `json:"id"`
		OwnedBy string `json:"owned_by"`
	} `json:"data"`
}

// ListModels asks the upstream which models it serves: GET {base}/models. Entries without
// an id are skipped. Azure deployments are not listed there (that endpoint lists base
// models, which are not what requests name), so an Azure provider says it cannot.
func (p *Provider) ListModels(ctx context.Context) ([]adapters.ModelInfo, error) {
	if p.models == "" {
		return nil, &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest,
			Message: "Azure OpenAI does not list deployments at /models: declare them under models"}
	}
	var list modelList
	if err := p.Get(ctx, p.models, &list, maxModelsBody, "model list"); err != nil {
		return nil, err
	}
	out := make([]adapters.ModelInfo, 0, len(list.Data))
	for _, m := range list.Data {
		if m.ID != "" {
			out = append(out, adapters.ModelInfo{ID: m.ID, OwnedBy: m.OwnedBy})
		}
	}
	return out, nil
}
