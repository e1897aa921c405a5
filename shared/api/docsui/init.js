// Loads the spec from this server, relative to the page, so the page works under any base path
// (an API Gateway stage, say). No validator badge: it would call out to swagger.io.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  persistAuthorization: false,
  tryItOutEnabled: true,
});
