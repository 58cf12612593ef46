package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// maxEmbeddingInputs is OpenAI's limit on inputs per request.
const maxEmbeddingInputs = 2048

func (s *Server) embeddings(c echo.Context) error {
	return s.serve(c, &exchange{start: time.Now(), id: newID(), route: "none", endpoint: "embeddings"}, s.embed)
}

func (s *Server) embed(c echo.Context, x *exchange) error {
	r := c.Request()
	caller, err := s.o.Keys.Authenticate(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	x.caller = caller
	req := &adapters.EmbeddingRequest{}
	if e := s.readJSON(c, req); e != nil {
		return e
	}
	if e := validateEmbedding(req); e != nil {
		return e
	}
	x.model = req.Model
	d, err := s.admit(c, x, embeddingFeatures(x.id, req, r.Header, caller))
	if err != nil {
		return err
	}
	up, err := s.o.Executor.PrepareEmbedding(req, d)
	if err != nil {
		return &errPolicy{err: err}
	}
	ctx, cancel := s.requestContext(r.Context(), d)
	defer cancel()
	res, err := s.o.Executor.Embed(ctx, up, d)
	if err != nil {
		return err
	}
	x.route, x.upstream = res.Target.String(), res.Upstream
	if u := res.Response.Usage; u != nil {
		x.usage = &adapters.Usage{PromptTokens: u.PromptTokens, TotalTokens: u.TotalTokens}
	}
	c.Response().Header().Set(HeaderRoute, x.route)
	x.status = http.StatusOK
	writeJSON(c, http.StatusOK, res.Response)
	return nil
}

func validateEmbedding(r *adapters.EmbeddingRequest) *APIError {
	switch {
	case r.Model == "":
		return errBadRequest("missing_required_parameter", "model", "you must provide a model parameter")
	case r.Input.Len() == 0:
		return errBadRequest("missing_required_parameter", "input", "input must be a non-empty string or array")
	case r.Input.Len() > maxEmbeddingInputs:
		return errBadRequest("invalid_value", "input", "input may hold at most "+strconv.Itoa(maxEmbeddingInputs)+" items")
	case r.Dimensions != nil && *r.Dimensions < 1:
		return errBadRequest("invalid_value", "dimensions", "dimensions must be at least 1")
	case r.EncodingFormat != "" && r.EncodingFormat != "float" && r.EncodingFormat != "base64":
		return errBadRequest("invalid_value", "encoding_format", "encoding_format must be 'float' or 'base64'")
	}
	for _, s := range r.Input.Texts {
		if s == "" {
			return errBadRequest("invalid_value", "input", "input strings must not be empty")
		}
	}
	return nil
}

// embeddingFeatures presents each input to the policy as a user message, so the same
// compliance and routing rules apply to what is embedded.
func embeddingFeatures(id string, r *adapters.EmbeddingRequest, h http.Header, caller *authCaller) policy.Request {
	f := policy.Request{ID: id, Endpoint: "embeddings", Model: r.Model}
	n := 0
	for _, t := range r.Input.Texts {
		f.Messages = append(f.Messages, policy.Message{Role: "user", Text: t})
		n += tokens.Estimate(t)
	}
	for _, toks := range r.Input.Tokens {
		n += len(toks)
	}
	f.EstInputTokens = n
	f.Metadata = metadata(nil, h.Get(HeaderTags))
	f.Bucket = bucket(stickyKey(id, r.User, caller))
	f.Sample = sample(id)
	return f
}
