// api.js: the console's only way to the service, a fetch wrapper for the public `/v1`
// API on the same origin.
//
// The API key lives in sessionStorage (this browser tab's session) and goes out as
// `Authorization: Bearer <key>`. Every failure becomes an `ApiError` that carries the
// service's own `error.code`, `error.message` and `error.details`.

const KEY_ITEM = 'crosswalk.console.key';
const ROLE_ITEM = 'crosswalk.console.role';

/** The signed-in key, or null. */
export function currentKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

/** The signed-in key's role (`tenant` or `admin`, from `GET /v1/key`), or null. */
export function currentRole() {
  return sessionStorage.getItem(ROLE_ITEM);
}

/** Keeps the key and its role for this session. */
export function signIn(key, role) {
  sessionStorage.setItem(KEY_ITEM, key);
  sessionStorage.setItem(ROLE_ITEM, role);
}

/** Forgets the key. */
export function signOut() {
  sessionStorage.removeItem(KEY_ITEM);
  sessionStorage.removeItem(ROLE_ITEM);
}

/** An error answer, or a service that could not be reached (`status` 0). */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details ?? null;
  }
}

let unauthorized = () => {};

/** Sets what happens when the signed-in key is refused (401) on a later call. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/**
 * Sends one request. `options`:
 * - `body`: a JSON value (sent as `application/json`), or a Blob / ArrayBuffer sent
 *   as is with `contentType`;
 * - `headers`: more headers (`If-Match`);
 * - `key`: a key to try instead of the signed-in one (sign-in), whose 401 is not
 *   treated as the session ending.
 * Answers `{status, data, headers}`, `data` being the parsed JSON (or null).
 */
export async function request(method, path, options = {}) {
  const key = options.key ?? currentKey();
  const headers = { Accept: 'application/json', ...(options.headers || {}) };
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (options.body instanceof Blob || options.body instanceof ArrayBuffer) {
    body = options.body;
    headers['Content-Type'] = options.contentType || 'application/octet-stream';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['Content-Type'] = 'application/json';
  }
  let response;
  let text;
  try {
    response = await fetch(path, { method, headers, body, cache: 'no-store' });
    text = await response.text();
  } catch (error) {
    throw new ApiError(0, 'network', `The service could not be reached (${error.message}).`);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : null;
    const failure = new ApiError(
      response.status,
      error ? error.code : 'http_error',
      error ? error.message : `The service answered ${response.status} ${response.statusText}.`,
      error ? error.details : null,
    );
    if (response.status === 401 && options.key === undefined) unauthorized(failure);
    throw failure;
  }
  return { status: response.status, data, headers: response.headers };
}

/** GET, answering the body. */
export async function get(path) {
  return (await request('GET', path)).data;
}

/** POST a JSON body (or none), answering the body. */
export async function post(path, body) {
  return (await request('POST', path, { body })).data;
}

/** DELETE, answering the body (usually none). */
export async function del(path) {
  return (await request('DELETE', path)).data;
}

/** The version an `ETag: "3"` names, or null. */
export function etagVersion(headers) {
  const tag = headers.get('ETag');
  const match = tag && tag.match(/"(\d+)"/);
  return match ? Number(match[1]) : null;
}

/** `If-Match` for a mapping version. */
export function ifMatch(version) {
  return { 'If-Match': `"${version}"` };
}

/** Encodes one path segment. */
export const seg = encodeURIComponent;

/** The entities of the unified model, and their collection names in record routes. */
export const ENTITIES = ['purchase_order', 'work_order', 'asset', 'vendor', 'part'];
export const COLLECTIONS = {
  purchase_order: 'purchase-orders',
  work_order: 'work-orders',
  asset: 'assets',
  vendor: 'vendors',
  part: 'parts',
};
export const ENTITY_LABELS = {
  purchase_order: 'Purchase orders',
  work_order: 'Work orders',
  asset: 'Assets',
  vendor: 'Vendors',
  part: 'Parts',
};
