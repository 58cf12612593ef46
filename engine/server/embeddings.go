package server

import (
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

// maxEmbeddingInputs is OpenAI's limit on inputs per request.
const maxEmbeddingInputs = 2048

func (s *Server) embeddings(c echo.Context) error {
	return s.serve(c, pipeline.EndpointEmbeddings, s.embed)
}

func (s *Server) embed(c echo.Context, x *pipeline.Exchange) error {
	r := c.Request()
	caller, err := s.o.Keys.Authenticate(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	req := &adapters.EmbeddingRequest{}
	if e := s.readJSON(c, req); e != nil {
		return e
	}
	if e := validateEmbedding(req); e != nil {
		return e
	}
	err = s.p.AdmitEmbedding(r.Context(), x, caller, req, r.Header.Get(HeaderTags))
	admitted(c, x)
	if err != nil {
		return err
	}
	ctx, cancel := s.p.Context(r.Context(), x)
	defer cancel()
	res, err := s.p.Embed(ctx, x)
	if err != nil {
		return err
	}
	routed(c, x)
	return s.writeAnswer(c, res)
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
