// groovae lab, the page: GrooVAE models exported for magenta.js (lab.json lists them; lab_models.js runs them).
// Samples and interpolations come from the models that sample; a clicked 16-step pattern or a dropped
// MIDI file is humanized or drumified by the models that can; every groove plays on the page's own kit
// (kit/*.wav, Web Audio), shows its drum roll and downloads as MIDI.  No server code.
'use strict';
(() => {
  const GRID_VELOCITY = 100;  // a clicked beat: one velocity, on the grid (what a drum machine plays)
  const lab = window.groovaeLab = {ready: false, error: null, grooves: [], playing: null};
  let info, models, audio, kit = [], pitchToClass = new Map(), grid = [], dropped = null, nextId = 0;
  const $ = (id) => document.getElementById(id);

  function status(text, isError) {
    const line = $('status');
    line.textContent = text;
    line.classList.toggle('error', !!isError);
    if (isError) lab.error = text;
  }

  function modelsThat(role) { return info.models.filter(m => m.role === role); }

  function currentBeat() {
    if (dropped) return dropped;
    const qpm = number('bpm');
    const pitches = info.pitchClasses.map(p => p[0]);
    return {ns: models.gridBeat(grid, pitches, qpm, GRID_VELOCITY), title: 'your pattern', meta: `clicked, ${qpm} bpm`};
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
    if (lab.playing.timer) clearTimeout(lab.playing.timer);
    lab.playing.card.classList.remove('playing');
    lab.playing = null;
  }

  // The kit's hits were rendered at one velocity; FluidSynth's General MIDI drums fall off about as the square
  // of the velocity, so a softer note plays at (velocity / kit velocity)^2 of the sample's level.
  function gainOf(velocity) { return Math.min(1.5, ((velocity || GRID_VELOCITY) / info.kit.velocity) ** 2); }

  async function playGroove(groove, card) {
    const again = lab.playing && lab.playing.card === card;
    stop();
    if (again) return;
    const playing = lab.playing = {card, sources: [], timer: null, id: groove.id};  // claimed before waiting
    await audio.resume();
    if (lab.playing !== playing) return;  // another click came first
    const start = audio.currentTime + 0.05, sources = playing.sources;
    for (const note of groove.ns.notes) {
      const c = pitchToClass.get(note.pitch);
      if (c === undefined) continue;
      const source = audio.createBufferSource(), gain = audio.createGain();
      source.buffer = kit[c];
      gain.gain.value = gainOf(note.velocity);
      source.connect(gain).connect(audio.destination);
      source.start(start + Math.max(0, note.startTime));
      sources.push(source);
    }
    card.classList.add('playing');
    playing.timer = setTimeout(stop, (groove.ns.totalTime + 0.5) * 1000);
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
    const step = models.stepSeconds(models.qpmOf(ns));
    for (let s = 0; s <= models.BARS * models.STEPS_PER_BAR; s += models.STEPS_PER_QUARTER) {
      g.fillStyle = s % models.STEPS_PER_BAR ? '#e4e4e4' : '#aaa';
      g.fillRect(x(s * step), 0, 1, rows * rowHeight + 4);
    }
    for (const note of ns.notes) {
      const c = pitchToClass.get(note.pitch);
      if (c === undefined) continue;
      g.fillStyle = `rgba(51,102,204,${0.25 + 0.75 * (note.velocity || GRID_VELOCITY) / 127})`;
      g.fillRect(x(note.startTime), c * rowHeight + 2, Math.max(3, x(step) - label - 1), rowHeight - 3);
    }
  }

  function midiLink(groove) {
    const bytes = models.midiBytes(groove.ns);
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
    let html = `<fieldset><legend>Settings</legend>${field('temperature', 'temperature', 0.5, 'step="0.1" min="0.01"')}
      ${field('seed', 'seed', 0, 'step="1" min="0"')}</fieldset>`;
    if (samplers.length) {
      html += `<fieldset><legend>Sample</legend><label>model <select id="sample-model">${options(samplers)}</select></label>
        ${field('grooves', 'count', 3, 'min="1" max="16"')}<button id="sample">sample</button></fieldset>
        <fieldset><legend>Interpolate</legend><label>from <select id="from"></select></label>
        <label>to <select id="to"></select></label>${field('steps', 'steps', 5, 'min="2" max="11"')}
        <button id="interpolate">interpolate</button></fieldset>`;
    }
    if (players.length) {
      html += `<fieldset><legend>Your beat</legend><div id="grid" class="grid"></div>
        ${field('bpm', 'bpm', 100, 'min="40" max="300"')}${field('feels', 'feels', 2, 'min="1" max="8"')}
        <div id="drop" class="drop">…or drop a MIDI file here (its first four bars; humanize reads its drums, drumify
        every note) <input id="file" type="file" accept=".mid,.midi"> <span id="dropped"></span></div>` +
        players.map(m => `<button class="transform" data-model="${m.name}">${m.role} with ${m.name}</button>`).join('') +
        '</fieldset>';
    }
    $('controls').innerHTML = html;
    if (players.length) buildGrid();
  }

  function buildGrid() {
    const box = $('grid');
    grid = info.classes.map(() => new Array(models.STEPS_PER_BAR).fill(false));
    const start = {kick: [0, 8, 10], snare: [4, 12], closed_hh: [0, 2, 4, 6, 8, 10, 12, 14]};  // a rock beat
    info.classes.forEach((name, c) => {
      const label = document.createElement('span');
      label.textContent = name;
      box.append(label);
      for (let s = 0; s < models.STEPS_PER_BAR; ++s) {
        const cell = document.createElement('button');
        cell.className = 'cell' + (s % models.STEPS_PER_QUARTER ? '' : ' beat');
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

  function number(id) {  // a setting's value; a bad one is the action's one-line error
    const input = $(id), value = Number(input.value), min = Number(input.min || -Infinity);
    if (input.value === '' || !Number.isFinite(value) || value < min || (input.max && value > Number(input.max))) {
      throw new Error(`${id} must be a number${input.min ? ` from ${input.min}` : ''}${input.max ? ` to ${input.max}` : ''}`);
    }
    return value;
  }
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
    on('sample', () => run('sampling', () => models.sample(model($('sample-model').value), number('count'),
                                                            number('temperature'), number('seed'))));
    on('interpolate', () => run('interpolating', () => {
      const a = grooveById($('from').value), b = grooveById($('to').value);
      if (!a || !b) throw new Error('make two grooves first');
      return models.interpolate(model($('sample-model').value), a, b, number('steps'), number('temperature'),
                                number('seed'));
    }));
    document.querySelectorAll('button.transform').forEach(button => {
      button.onclick = () => run(button.textContent, async () => {
        const beat = currentBeat(), player = model(button.dataset.model);
        const input = {...beat, ns: models.window4bars(beat.ns, player.role === 'humanize')};
        return [input, ...await models.play(player, beat, number('feels'), number('temperature'), number('seed'))];
      });
    });
    const drop = $('drop');
    if (!drop) return;
    const take = (file) => run(`reading ${file.name}`, async () => {
      const ns = await models.readMidi(file);
      models.window4bars(ns, false);  // refused here, with its reason, rather than at the first model
      dropped = {ns, title: file.name, meta: `dropped file, ${Math.round(models.qpmOf(ns))} bpm`};
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
      models = window.groovaeModels(info);
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
  lab.midiBytes = (id) => Array.from(models.midiBytes(grooveById(id).ns));
  window.addEventListener('DOMContentLoaded', start);
})();
