// CloudFront Function (cloudfront-js-2.0, viewer-request): copies the API key
// from the x-api-key header into the standard log's viewer-request-log-data
// field, so edgemeter can meter APIs whose clients send keys in a header
// (standard logs cannot log request headers). edgemeter hashes the key on
// ingest and redacts it from the stored field.
var MAX_KEY_LENGTH = 512; // logCustomData keeps at most 800 bytes

function handler(event) {
    var request = event.request;
    var header = request.headers['x-api-key'];
    if (header && header.value && header.value.length <= MAX_KEY_LENGTH) {
        cf.logCustomData('api_key=' + encodeURIComponent(header.value));
    }
    return request;
}

if (typeof module !== 'undefined') {
    module.exports = { handler: handler };
}
