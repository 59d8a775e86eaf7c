// Unit tests for the CloudFront Function, run with Node's test runner:
//   node --test infra/cloudfront-function/
const test = require('node:test');
const assert = require('node:assert/strict');

let logged;
globalThis.cf = { logCustomData: (data) => { logged.push(data); } };
const { handler } = require('./api-key-to-log.js');

function event(headers) {
    return { request: { method: 'GET', uri: '/v1/users/1', querystring: {}, headers, cookies: {} } };
}

test('copies x-api-key into the log data, URL-encoded', () => {
    logged = [];
    const request = handler(event({ 'x-api-key': { value: 'ak_live_a+b/c=1&x' } }));
    assert.deepEqual(logged, ['api_key=ak_live_a%2Bb%2Fc%3D1%26x']);
    assert.equal(request.uri, '/v1/users/1', 'the request passes unchanged');
});

test('logs nothing without the header or with an empty value', () => {
    logged = [];
    handler(event({}));
    handler(event({ 'x-api-key': { value: '' } }));
    assert.deepEqual(logged, []);
});

test('ignores values too long to fit the 800-byte log data', () => {
    logged = [];
    handler(event({ 'x-api-key': { value: 'k'.repeat(513) } }));
    assert.deepEqual(logged, []);
    handler(event({ 'x-api-key': { value: 'k'.repeat(512) } }));
    assert.equal(logged.length, 1);
});
