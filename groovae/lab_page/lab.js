// groovae lab: GrooVAE models exported for magenta.js (lab.json lists them), run in this page.
// Samples and interpolations come from the models that sample; a clicked 16-step pattern or a dropped
// MIDI file is humanized or drumified by the models that can; every groove plays on the page's own kit
// (kit/*.wav, Web Audio), shows its drum roll and downloads as MIDI.  No server code.
'use strict';
(() => {
  const STEPS_PER_QUARTER = 4, STEPS_PER_BAR = 16, BARS = 4;
  const GRID_VELOCITY = 100;  // a clicked beat: one velocity, on the grid (what a drum machine plays)
  const lab = window.groovaeLab = {ready: false, error: null, grooves: [], playing: null};
  let info, audio, kit = [], pitchToClass = new Map(), grid = [], dropped = null, nextId = 0;
  const $ = (id) => document.getElementById(id);

  function status(text, isError) {
    const line = $('status');
    line.textContent = text;
    line.classList.toggle('error', !!isError);
    if (isError) lab.error = text;
  }

  // ------------------------------------------------------------------ seeded randomness
  // A seed gives one groove: z from our own generator, and magenta.js's hit sampling (tf.randomUniform,
  // which seeds itself from Math.random) run with Math.random replaced by a seeded generator.
  function generator(seed) {  // mulberry32
    let a = (seed >>> 0) ^ 0x2545f491;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function gaussians(random, n) {  // Box-Muller
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - random())), angle = 2 * Math.PI * random();
      out[i] = r * Math.cos(angle);
      if (i + 1 < n) out[i + 1] = r * Math.sin(angle);
    }
    return out;
  }
  async function seeded(seed, fn) {
    const saved = Math.random;
    Math.random = generator(seed + 7919);
    try { return await fn(); } finally { Math.random = saved; }
  }

  // ------------------------------------------------------------------ models
  function modelsThat(role) { return info.models.filter(m => m.role === role); }
  function qpmOf(ns) { return ns.tempos && ns.tempos.length ? ns.tempos[0].qpm : 120; }

  async function decode(model, z, temperature, seed, qpm) {
    return seeded(seed, () => model.vae.decode(z, temperature, undefined, STEPS_PER_QUARTER, qpm));
  }

  // The posterior N(mu, sigma) of a beat's code.  magenta.js's encoder returns mu only; sigma is the same
  // encoder with the export's encoder/sigma layer in place of encoder/mu (softplus, as in MusicVAE).
  async function posterior(model, tensors) {
    const encoder = model.vae.encoder, muVars = encoder.muVars, vars = model.vae.rawVars;
    const mu = await model.vae.encodeTensors(tensors, undefined);
    encoder.muVars = {kernel: vars['encoder/sigma/kernel'], bias: vars['encoder/sigma/bias']};
    let raw;
    try { raw = await model.vae.encodeTensors(tensors, undefined); } finally { encoder.muVars = muVars; }
    const sigma = mm.tf.softplus(raw);
    raw.dispose();
    return [mu, sigma];
  }

  async function sample(model, n, temperature, seed) {
    const z = mm.tf.tensor2d(gaussians(generator(seed), n * model.vae.zDims), [n, model.vae.zDims]);
    const sequences = await decode(model, z, temperature, seed, 120);
    const rows = await z.array();
    z.dispose();
    return sequences.map((ns, k) => ({ns, z: rows[k], model: model.name,
                                      title: `sample ${k + 1}`, meta: `${model.name} · T ${temperature} · seed ${seed}`}));
  }

  function slerp(a, b, t) {
    const dot = a.reduce((s, x, i) => s + x * b[i], 0);
    const norms = Math.hypot(...a) * Math.hypot(...b);
    const omega = Math.acos(Math.min(1, Math.max(-1, dot / (norms || 1))));
    if (omega < 1e-6) return a.map((x, i) => (1 - t) * x + t * b[i]);
    return a.map((x, i) => (Math.sin((1 - t) * omega) * x + Math.sin(t * omega) * b[i]) / Math.sin(omega));
  }

  async function codeOf(model, groove) {  // a groove's code in this model: kept from sampling, else encoded
    if (groove.z && groove.model === model.name) return groove.z;
    const z = await model.vae.encode([window4bars(groove.ns)]);
    const [row] = await z.array();
    z.dispose();
    return row;
  }

  async function interpolate(model, a, b, steps, temperature, seed) {
    const za = await codeOf(model, a), zb = await codeOf(model, b);
    const zs = Array.from({length: steps}, (_, k) => slerp(za, zb, steps > 1 ? k / (steps - 1) : 0));
    const z = mm.tf.tensor2d(zs);
    const sequences = await decode(model, z, temperature, seed, qpmOf(a.ns));
    z.dispose();
    return sequences.map((ns, k) => ({ns, z: zs[k], model: model.name, title: `${a.title} → ${b.title}: ${k + 1}/${steps}`,
                                      meta: `${model.name} · T ${temperature} · seed ${seed}`}));
  }

  // Humanize / drumify: the beat's code drawn from its posterior, z = mu + T * sigma * eps, then decoded.
  async function play(model, beat, n, temperature, seed) {
    const input = window4bars(beat.ns);
    const one = model.vae.dataConverter.toTensor(input);
    const tensors = mm.tf.tile(mm.tf.expandDims(one, 0), [n, 1, 1]);
    const [mu, sigma] = await posterior(model, tensors);
    const eps = mm.tf.tensor2d(gaussians(generator(seed), n * model.vae.zDims), [n, model.vae.zDims]);
    const z = mu.add(sigma.mul(eps).mul(temperature));
    const sequences = await decode(model, z, temperature, seed, qpmOf(input));
    const rows = await z.array();
    mm.tf.dispose([one, tensors, mu, sigma, eps, z]);
    const verb = model.role === 'humanize' ? 'humanized' : 'drumified';
    return sequences.map((ns, k) => ({ns, z: rows[k], model: model.name, title: `${beat.title}, ${verb} ${k + 1}`,
                                      meta: `${model.name} · T ${temperature} · seed ${seed}`}));
  }

  // ------------------------------------------------------------------ beats
  function stepSeconds(qpm) { return 60 / qpm / STEPS_PER_QUARTER; }

  function gridBeat(qpm) {  // the clicked bar, four times, at one velocity
    const step = stepSeconds(qpm), notes = [];
    for (let bar = 0; bar < BARS; ++bar) {
      grid.forEach((row, c) => row.forEach((on, s) => {
        if (!on) return;
        const start = (bar * STEPS_PER_BAR + s) * step;
        notes.push({pitch: info.pitchClasses[c][0], velocity: GRID_VELOCITY, startTime: start,
                    endTime: start + step, isDrum: true});
      }));
    }
    if (!notes.length) throw new Error('the pattern is empty: click some steps first');
    return mm.NoteSequence.create({notes, tempos: [{time: 0, qpm}], totalTime: BARS * STEPS_PER_BAR * step});
  }

  function window4bars(ns) {  // the first four bars, as the models take them (throws on other meters)
    const meter = (ns.timeSignatures || [])[0];
    if (meter && (meter.numerator !== 4 || meter.denominator !== 4)) {
      throw new Error(`time signature ${meter.numerator}/${meter.denominator}; the models' bars are 4/4`);
    }
    const qpm = qpmOf(ns), steps = BARS * STEPS_PER_BAR;
    const timed = mm.NoteSequence.create({notes: ns.notes, tempos: [{time: 0, qpm}], totalTime: steps * stepSeconds(qpm)});
    const quantized = mm.sequences.quantizeNoteSequence(timed, STEPS_PER_QUARTER);  // keeps the notes' order
    timed.notes = ns.notes.filter((n, k) => quantized.notes[k].quantizedStartStep < steps);
    if (!timed.notes.length) throw new Error('no notes in the first four bars');
    return timed;  // unquantized: the micro-timing stays (the models quantize it themselves)
  }

  async function readMidi(file) {
    const ns = mm.midiToSequenceProto(new Uint8Array(await file.arrayBuffer()));
    if ((ns.tempos || []).length > 1 && new Set(ns.tempos.map(t => Math.round(t.qpm * 1000))).size > 1) {
      throw new Error(`${file.name}: tempo changes; the models play one tempo`);
    }
    if (!ns.notes.length) throw new Error(`${file.name}: no notes`);
    return ns;
  }

  function currentBeat() {
    if (dropped) return dropped;
    const qpm = Number($('bpm').value) || 120;
    return {ns: gridBeat(qpm), title: 'your pattern', meta: `clicked, ${qpm} bpm`};
  }

  // ------------------------------------------------------------------ sound, drum roll, MIDI
  async function loadKit() {
    audio = new (window.AudioContext || window.webkitAudioContext)();
    kit = await Promise.all(info.kit.files.map(async (path) => {
      const response = await fetch(path);
      if (!response.ok) throw new Error(`${path}: ${response.status}`);
      return audio.decodeAudioData(await response.arrayBuffer());
    }));
  }

  function stop() {
    if (!lab.playing) return;
    lab.playing.sources.forEach(s => { try { s.stop(); } catch (e) { /* already ended */ } });
    clearTimeout(lab.playing.timer);
    lab.playing.card.classList.remove('playing');
    lab.playing = null;
  }

  async function playGroove(groove, card) {
    const again = lab.playing && lab.playing.card === card;
    stop();
    if (again) return;
    await audio.resume();
    const start = audio.currentTime + 0.05, sources = [];
    for (const note of groove.ns.notes) {
      const c = pitchToClass.get(note.pitch);
      if (c === undefined) continue;
      const source = audio.createBufferSource(), gain = audio.createGain();
      source.buffer = kit[c];
      gain.gain.value = (note.velocity || GRID_VELOCITY) / 127;
      source.connect(gain).connect(audio.destination);
      source.start(start + Math.max(0, note.startTime));
      sources.push(source);
    }
    card.classList.add('playing');
    const timer = setTimeout(stop, (groove.ns.totalTime + 0.5) * 1000);
    lab.playing = {card, sources, timer, id: groove.id};
  }

  function drawRoll(canvas, ns) {  // drawn at the size it is shown (sharp on any screen)
    const rows = info.classes.length, scale = window.devicePixelRatio || 1;
    const width = Math.max(320, canvas.clientWidth || 480), rowHeight = 13, label = 62;
    canvas.width = width * scale;
    canvas.height = (rows * rowHeight + 4) * scale;
    canvas.style.height = `${rows * rowHeight + 4}px`;
    const g = canvas.getContext('2d'), total = ns.totalTime || 1;
    const x = t => label + (width - label) * t / total;
    g.scale(scale, scale);
    g.font = '10px system-ui, sans-serif';
    info.classes.forEach((name, c) => { g.fillStyle = '#555'; g.fillText(name, 2, (c + 1) * rowHeight - 2); });
    const step = stepSeconds(qpmOf(ns));
    for (let s = 0; s <= BARS * STEPS_PER_BAR; s += STEPS_PER_QUARTER) {
      g.fillStyle = s % STEPS_PER_BAR ? '#e4e4e4' : '#aaa';
      g.fillRect(x(s * step), 0, 1, rows * rowHeight + 4);
    }
    for (const note of ns.notes) {
      const c = pitchToClass.get(note.pitch);
      if (c === undefined) continue;
      g.fillStyle = `rgba(51,102,204,${0.25 + 0.75 * (note.velocity || GRID_VELOCITY) / 127})`;
      g.fillRect(x(note.startTime), c * rowHeight + 2, Math.max(3, x(step) - label - 1), rowHeight - 3);
    }
  }

  // A note the model plays early on the first step would start before 0: clamped.  The tempo gets its time:
  // magenta.js's decoder leaves it out, and its MIDI writer then never returns.
  function midiBytes(ns) {
    const notes = ns.notes.map(n => ({...n, startTime: Math.max(0, n.startTime), endTime: Math.max(n.endTime, 0.01)}));
    return mm.sequenceProtoToMidi(mm.NoteSequence.create({notes, tempos: [{time: 0, qpm: qpmOf(ns)}],
                                                          totalTime: ns.totalTime}));
  }

  function midiLink(groove) {
    const bytes = midiBytes(groove.ns);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([bytes], {type: 'audio/midi'}));
    link.download = `groove_${groove.id}.mid`;
    link.textContent = 'MIDI';
    link.className = 'midi';
    return link;
  }

  function addGroove(groove) {
    groove.id = ++nextId;
    lab.grooves.push(groove);
    const card = document.createElement('figure');
    card.className = 'groove';
    card.dataset.id = groove.id;
    const caption = document.createElement('figcaption'), name = document.createElement('span');
    name.innerHTML = `<b></b> · <span class="meta"></span>`;
    name.querySelector('b').textContent = `${groove.id}. ${groove.title}`;
    name.querySelector('.meta').textContent = groove.meta;
    const button = document.createElement('button');
    button.textContent = 'play';
    button.className = 'play';
    button.onclick = () => playGroove(groove, card);
    caption.append(name, button, midiLink(groove));
    const canvas = document.createElement('canvas');
    card.append(caption, canvas);
    $('grooves').prepend(card);
    drawRoll(canvas, groove.ns);  // in the page: its shown width is known
    refreshChoices();
  }

  // ------------------------------------------------------------------ controls
  function field(label, id, value, attrs = '') {
    return `<label>${label} <input id="${id}" type="number" value="${value}" ${attrs}></label>`;
  }
  function options(models) { return models.map(m => `<option>${m.name}</option>`).join(''); }

  function buildControls() {
    const samplers = modelsThat('sample'), players = info.models.filter(m => m.role !== 'sample');
    let html = '';
    if (samplers.length) {
      html += `<fieldset><legend>Sample</legend><label>model <select id="sample-model">${options(samplers)}</select></label>
        ${field('temperature', 'temperature', 0.5, 'step="0.1" min="0.01"')}${field('seed', 'seed', 0, 'step="1"')}
        ${field('grooves', 'count', 3, 'min="1" max="16"')}<button id="sample">sample</button></fieldset>
        <fieldset><legend>Interpolate</legend><label>from <select id="from"></select></label>
        <label>to <select id="to"></select></label>${field('steps', 'steps', 5, 'min="2" max="11"')}
        <button id="interpolate">interpolate</button></fieldset>`;
    }
    if (players.length) {
      html += `<fieldset><legend>Your beat</legend><div id="grid" class="grid"></div>
        ${field('bpm', 'bpm', 100, 'min="40" max="300"')}${field('feels', 'feels', 2, 'min="1" max="8"')}
        <div id="drop" class="drop">…or drop a drum MIDI file here (its first four bars) <input id="file" type="file"
        accept=".mid,.midi"> <span id="dropped"></span></div>` +
        players.map(m => `<button class="transform" data-model="${m.name}">${m.role} with ${m.name}</button>`).join('') +
        '</fieldset>';
    }
    $('controls').innerHTML = html;
    if (players.length) buildGrid();
  }

  function buildGrid() {
    const box = $('grid');
    grid = info.classes.map(() => new Array(STEPS_PER_BAR).fill(false));
    const start = {kick: [0, 8, 10], snare: [4, 12], closed_hh: [0, 2, 4, 6, 8, 10, 12, 14]};  // a rock beat
    info.classes.forEach((name, c) => {
      const label = document.createElement('span');
      label.textContent = name;
      box.append(label);
      for (let s = 0; s < STEPS_PER_BAR; ++s) {
        const cell = document.createElement('button');
        cell.className = 'cell' + (s % STEPS_PER_QUARTER ? '' : ' beat');
        cell.dataset.row = c;
        cell.dataset.step = s;
        cell.title = `${name}, step ${s + 1}`;
        cell.onclick = () => { setCell(cell, !grid[c][s]); dropped = null; $('dropped').textContent = ''; };
        box.append(cell);
        setCell(cell, (start[name] || []).includes(s));
      }
    });
  }

  function setCell(cell, on) {
    grid[cell.dataset.row][cell.dataset.step] = on;
    cell.classList.toggle('on', on);
  }

  function refreshChoices() {
    for (const id of ['from', 'to']) {
      const select = $(id);
      if (!select) return;
      const kept = select.value;
      select.innerHTML = lab.grooves.map(g => `<option value="${g.id}">${g.id}. ${g.title}</option>`).join('');
      if (kept) select.value = kept;
      if (id === 'to' && select.value === $('from').value && lab.grooves.length > 1) {
        select.value = lab.grooves[1].id;  // two different grooves to start with
      }
    }
  }

  function number(id) { return Number($(id).value); }
  function grooveById(id) { return lab.grooves.find(g => String(g.id) === String(id)); }
  function model(name) { return info.models.find(m => m.name === name); }

  async function run(label, fn) {  // one action at a time; its error is one line in the status
    document.querySelectorAll('#controls button').forEach(b => { b.disabled = true; });
    status(`${label}…`);
    const began = performance.now();
    try {
      const made = await fn();
      made.forEach(addGroove);
      status(`${label}: ${made.length} groove${made.length === 1 ? '' : 's'} in ${Math.round(performance.now() - began)} ms`);
    } catch (e) {
      status(`${label}: ${e.message || e}`, true);
    } finally {
      document.querySelectorAll('#controls button').forEach(b => { b.disabled = false; });
    }
  }

  function wire() {
    const on = (id, fn) => { const el = $(id); if (el) el.onclick = fn; };
    on('sample', () => run('sampling', () => sample(model($('sample-model').value), number('count'),
                                                     number('temperature'), number('seed'))));
    on('interpolate', () => run('interpolating', () => {
      const a = grooveById($('from').value), b = grooveById($('to').value);
      if (!a || !b) throw new Error('make two grooves first');
      return interpolate(model($('sample-model').value), a, b, number('steps'), number('temperature'), number('seed'));
    }));
    document.querySelectorAll('button.transform').forEach(button => {
      button.onclick = () => run(button.textContent, async () => {
        const beat = currentBeat();
        return [{...beat, ns: window4bars(beat.ns)}, ...await play(model(button.dataset.model), beat, number('feels'),
                                                                   number('temperature') || 0.5, number('seed') || 0)];
      });
    });
    const drop = $('drop');
    if (!drop) return;
    const take = (file) => run(`reading ${file.name}`, async () => {
      const ns = await readMidi(file);
      window4bars(ns);  // refused here, with its reason, rather than at the first model
      dropped = {ns, title: file.name, meta: `dropped file, ${Math.round(qpmOf(ns))} bpm`};
      $('dropped').textContent = `using ${file.name} (click the grid to use the pattern again)`;
      return [];
    });
    $('file').onchange = (e) => { if (e.target.files[0]) take(e.target.files[0]); };
    drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
    drop.ondragleave = () => drop.classList.remove('over');
    drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove('over'); if (e.dataTransfer.files[0]) take(e.dataTransfer.files[0]); };
  }

  // tf.js runs on WebGL by default; on a software WebGL (no GPU: SwiftShader, llvmpipe) its plain-JS CPU
  // backend decodes several times faster.  ?backend=cpu|webgl chooses.
  function softwareWebGL() {
    try {
      const gl = document.createElement('canvas').getContext('webgl');
      const about = gl && gl.getExtension('WEBGL_debug_renderer_info');
      return !gl || /swiftshader|llvmpipe|software/i.test(about ? gl.getParameter(about.UNMASKED_RENDERER_WEBGL) : '');
    } catch (e) {
      return true;
    }
  }

  async function chooseBackend() {
    const asked = new URLSearchParams(location.search).get('backend');
    await mm.tf.setBackend(asked || (softwareWebGL() ? 'cpu' : 'webgl'));
    lab.backend = mm.tf.getBackend();
  }

  async function start() {
    try {
      if (!window.mm) throw new Error('@magenta/music did not load (offline? build the lab with --magenta_js)');
      await chooseBackend();
      info = await (await fetch('lab.json')).json();
      info.pitchClasses.forEach((pitches, c) => pitches.forEach(p => pitchToClass.set(p, c)));
      const began = performance.now();
      for (const m of info.models) {
        m.vae = new mm.MusicVAE(`models/${m.name}`);
        await m.vae.initialize();
      }
      await loadKit();
      buildControls();
      wire();
      lab.loadMs = Math.round(performance.now() - began);
      $('about').textContent = `Models: ${info.models.map(m => `${m.name} (${m.does}, ${m.config || '?'} step ` +
        `${m.step ?? '?'}, ${m.bytes < 1e6 ? `${Math.round(m.bytes / 1e3)} kB` : `${(m.bytes / 1e6).toFixed(1)} MB`})`).join('; ')}. Kit: ${info.kit.made}. Seeds are ` +
        `this page's own: the same seed gives the same groove here, not the one groovae generate gives.`;
      status(`ready: ${info.models.length} model${info.models.length === 1 ? '' : 's'} loaded in ${lab.loadMs} ms ` +
             `(tf.js on ${lab.backend})`);
      lab.ready = true;
    } catch (e) {
      status(`the lab could not start: ${e.message || e}`, true);
    }
  }
  lab.midiBytes = (id) => Array.from(midiBytes(grooveById(id).ns));
  window.addEventListener('DOMContentLoaded', start);
})();
