// The Extra Horizon JavaScript SDK, unmodified, driving the dispatcher API
// through the flow of its documentation. HOST and TOKEN come from
// TestExtraHorizonSDK.
const { createProxyClient } = require('@extrahorizon/javascript-sdk');
const assert = require('assert');
(async () => {
  const exh = createProxyClient({ host: process.env.HOST, headers: { Authorization: 'Bearer ' + process.env.TOKEN } });
  const tmpl = (await exh.raw.post('/templates/v1', { name: 'exh-welcome', subject: 'Hi', text: 'Hi' })).data;
  await exh.raw.post('/functions/v1', { name: 'my-function-name', url: 'http://127.0.0.1:9/' });
  // As the SDK documentation creates it (seed 000).
  const created = await exh.dispatchers.create({
    eventType: 'my-event-type', name: 'my-unique-dispatcher-name', description: 'A Dispatcher that handles my-event-type',
    actions: [{ type: 'task', name: 'my-unique-action-name', description: 'An Action', functionName: 'my-function-name',
      data: { customStringField: 'myStringHere', customNumberField: 42 }, startTimestamp: new Date(), tags: ['tag1', 'tag2'] }],
    tags: ['tag1', 'tag2', 'EXH_CLI_MANAGED'],
  });
  assert.match(created.id, /^[0-9a-f]{24}$/); assert.equal(created.actions.length, 1);
  assert.equal(typeof created.creationTimestamp === 'number' || created.creationTimestamp instanceof Date, true);
  const page = await exh.dispatchers.find({ rql: '?eq(tags,EXH_CLI_MANAGED)&limit(50)' });
  assert.equal(page.page.total, 1); assert.equal(page.data[0].name, 'my-unique-dispatcher-name');
  // The builder's presence and array forms, and skipCount().
  const { rqlBuilder } = require('@extrahorizon/javascript-sdk');
  const total = async (rql) => (await exh.dispatchers.find({ rql })).page.total;
  assert.equal(await total(rqlBuilder().contains('description').skipCount().build()), 1);
  assert.equal(await total(rqlBuilder().excludes('description').build()), 0);
  assert.equal(await total(rqlBuilder().contains('actions', rqlBuilder().eq('type', 'task').intermediate(), rqlBuilder().eq('functionName', 'my-function-name').intermediate()).build()), 1);
  assert.equal(await total(rqlBuilder().contains('actions', rqlBuilder().eq('type', 'task').intermediate(), rqlBuilder().eq('functionName', 'other').intermediate()).build()), 0);
  assert.equal(await total(rqlBuilder().excludes('actions', rqlBuilder().eq('type', 'mail').intermediate()).build()), 1);
  const byId = await exh.dispatchers.findById(created.id);
  assert.equal(byId.id, created.id);
  const first = await exh.dispatchers.findFirst();
  assert.equal(first.id, created.id);
  const all = await exh.dispatchers.findAll();
  assert.equal(all.length, 1);
  const upd = await exh.dispatchers.update(created.id, { eventType: 'my-event-type', name: 'renamed', description: 'd', tags: ['tag1'] });
  assert.equal(upd.affectedRecords, 1);
  const mail = await exh.dispatchers.actions.create(created.id, { type: 'mail', recipients: { to: ['john.doe@example.com'], cc: ['jane.doe@example.com'], bcc: ['bcc@example.com'] }, templateId: tmpl.id });
  assert.match(mail.id, /^[0-9a-f]{24}$/);
  assert.equal((await exh.dispatchers.actions.update(created.id, mail.id, { recipients: { to: ['x@example.com'] } })).affectedRecords, 1);
  assert.equal((await exh.dispatchers.actions.remove(created.id, mail.id)).affectedRecords, 1);
  // Errors come back as the SDK's typed errors.
  let err;
  try { await exh.dispatchers.create({ name: 'renamed', eventType: 'x' }); } catch (e) { err = e; }
  assert.ok(err instanceof require('@extrahorizon/javascript-sdk').ResourceAlreadyExistsError, String(err) + ' ' + (err && err.constructor.name));
  try { await exh.dispatchers.findById('0123456789abcdef01234567').then(r => { if (!r) throw new Error('none'); }); } catch (e) { err = e; }
  try { await exh.dispatchers.remove('nothex'); } catch (e) { err = e; }
  assert.ok(err instanceof require('@extrahorizon/javascript-sdk').IDFormatError, err.constructor.name);
  try { await exh.dispatchers.find({ rql: '?eq(colour,red)' }); } catch (e) { err = e; }
  assert.ok(err instanceof require('@extrahorizon/javascript-sdk').InvalidRqlError, err.constructor.name);
  const bad = createProxyClient({ host: process.env.HOST, headers: { Authorization: 'Bearer nope' } });
  try { await bad.dispatchers.find(); } catch (e) { err = e; }
  assert.ok(err instanceof require('@extrahorizon/javascript-sdk').AccessTokenUnknownError, err.constructor.name);
  // Authenticated but not allowed: 403 here (401 at Extra Horizon), code 10 in both.
  const viewer = createProxyClient({ host: process.env.HOST, headers: { Authorization: 'Bearer ' + process.env.VIEW_TOKEN } });
  assert.equal((await viewer.dispatchers.find()).page.total, 1);
  err = undefined;
  try { await viewer.dispatchers.create({ eventType: 'x' }); } catch (e) { err = e; }
  assert.ok(err instanceof require('@extrahorizon/javascript-sdk').NoPermissionError, err && err.constructor.name);
  assert.equal(err.status, 403); assert.match(err.message, /CREATE_DISPATCHERS/);
  assert.equal((await exh.dispatchers.remove(created.id)).affectedRecords, 1);
  assert.equal((await exh.dispatchers.find()).page.total, 0);
  console.log('EXH SDK 8.14.1 flow: OK');
})().catch(e => { console.error('FAILED:', e && (e.name + ' ' + e.message), e && e.response && e.response.data); process.exit(1); });
