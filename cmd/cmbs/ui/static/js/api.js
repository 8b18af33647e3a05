// The server's JSON interface. The page asks for OCCI 1.2 JSON, whose
// collections carry their entities whole and whose attributes are flat
// dotted names; requests are sent in pyOCNI's JSON, as every example is.

export const JSON12 = 'application/occi+json; version=1.2';
export const OCCI_JSON = 'application/occi+json';

export const MEMBER_KIND = 'http://houssem.org/cmbs#member';
export const MESSAGE_KIND = 'http://houssem.org/cmbs#message';
export const SUBSCRIPTION_KIND = 'http://houssem.org/cmbs#subscription';
export const MEMBER_LOCATION = '/cmbs/member/';
export const MESSAGE_LOCATION = '/cmbs/message/';
export const SUBSCRIPTION_LOCATION = '/cmbs/subscription/';
export const LAYER_MIXIN_SCHEME = 'http://houssem.org/cmbs#';

/** ApiError is a refusal, with the problem document's detail and field. */
export class ApiError extends Error {
  constructor(status, detail, field) {
    super(field ? `${detail} (field ${field})` : detail);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
  }
}

/**
 * request sends one request to the server the page came from; the browser
 * adds the credentials it was given for the page. It resolves to the
 * status, the decoded body and the Location header, and rejects with an
 * ApiError for a refusal.
 */
export async function request(method, path, { body, accept = JSON12 } = {}) {
  const headers = { Accept: accept };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = OCCI_JSON;
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `${method} ${path}: the server did not answer (${err.message})`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    const detail = data && typeof data === 'object' && data.detail ? data.detail : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, `${method} ${path}: ${detail}`, data && data.field);
  }
  return { status: res.status, data, location: res.headers.get('Location') };
}

/** entities reads a kind's collection, every entity whole. */
export async function entities(location) {
  const { data } = await request('GET', location);
  return (data && data.resources) || [];
}

/** entity reads one entity. */
export async function entity(location) {
  const { data } = await request('GET', location);
  return data;
}

/** count reads how many entities a kind's location holds, from its location list. */
export async function count(location) {
  const { data } = await request('GET', location, { accept: OCCI_JSON });
  return ((data && data['X-OCCI-Location']) || []).length;
}

/** action runs an action on the entity at location. */
export async function action(location, name) {
  const sep = location.includes('?') ? '&' : '?';
  return request('POST', `${location}${sep}action=${encodeURIComponent(name)}`, { body: {}, accept: OCCI_JSON });
}

/** create posts one resource to a kind's location and returns its location. */
export async function create(location, resource) {
  const res = await request('POST', location, { body: { resources: [resource] }, accept: OCCI_JSON });
  const loc = res.location || (res.data && res.data.Location && res.data.Location[0]);
  if (!loc) throw new ApiError(res.status, `POST ${location}: the server gave no Location`);
  return new URL(loc, window.location.href).pathname;
}

/** categories reads the query interface. */
export async function categories() {
  const { data } = await request('GET', '/-/');
  return data;
}

/** metrics reads the Prometheus text of /metrics. */
export async function metricsText() {
  let res;
  try {
    res = await fetch('/metrics', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'text/plain' } });
  } catch (err) {
    throw new ApiError(0, `GET /metrics: the server did not answer (${err.message})`);
  }
  if (!res.ok) throw new ApiError(res.status, `GET /metrics: ${res.status} ${res.statusText}`);
  return res.text();
}
