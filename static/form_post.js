// OAuth 2.0 Form Post Response Mode: submit the response to the client.
// Served as a file so that the page's CSP can forbid inline script.
document.getElementById("form-post").submit();
