// groovae lab, the models' side: seeded sampling, interpolation, humanize / drumify with magenta.js's
// MusicVAE, and what a beat must be to go in (four 4/4 bars at one tempo).  lab.js builds the page on it.
'use strict';
window.groovaeModels = (info) => {
  const STEPS_PER_QUARTER = info.stepsPerQuarter, STEPS = info.numSteps;
  const STEPS_PER_BAR = 4 * STEPS_PER_QUARTER, BARS = STEPS / STEPS_PER_BAR;

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

  function gaussians(seed, n) {  // Box-Muller
    const random = generator(seed), out = new Float32Array(n);
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

  function qpmOf(ns) { return ns.tempos && ns.tempos.length ? ns.tempos[0].qpm : 120; }
  function stepSeconds(qpm) { return 60 / qpm / STEPS_PER_QUARTER; }

  // ------------------------------------------------------------------ the models
  async function decode(model, z, temperature, seed, qpm) {
    return seeded(seed, () => model.vae.decode(z, temperature, undefined, STEPS_PER_QUARTER, qpm));
  }

  // The posterior N(mu, sigma) of beats' codes.  magenta.js's encoder gives mu only, or, without its mu layer,
  // the BiLSTM's final state: from that state, the export's encoder/mu and encoder/sigma layers (softplus, as
  // in MusicVAE) give both in one encoder pass.
  async function posterior(model, tensors) {
    const encoder = model.vae.encoder, muVars = encoder.muVars, vars = model.vae.rawVars;
    encoder.muVars = null;
    let state;
    try { state = await model.vae.encodeTensors(tensors, undefined); } finally { encoder.muVars = muVars; }
    const dense = (name) => state.matMul(vars[`encoder/${name}/kernel`]).add(vars[`encoder/${name}/bias`]);
    const both = mm.tf.tidy(() => [dense('mu'), mm.tf.softplus(dense('sigma'))]);
    state.dispose();
    return both;
  }

  function grooves(sequences, codes, model, title, temperature, seed) {
    return sequences.map((ns, k) => ({ns, z: codes[k], model: model.name, title: title(k),
                                      meta: `${model.name} · T ${temperature} · seed ${seed}`}));
  }

  async function sample(model, n, temperature, seed) {
    const z = mm.tf.tensor2d(gaussians(seed, n * model.vae.zDims), [n, model.vae.zDims]);
    const sequences = await decode(model, z, temperature, seed, 120);
    const codes = await z.array();
    z.dispose();
    return grooves(sequences, codes, model, k => `sample ${k + 1}`, temperature, seed);
  }

  function slerp(a, b, t) {
    const dot = a.reduce((s, x, i) => s + x * b[i], 0);
    const omega = Math.acos(Math.min(1, Math.max(-1, dot / ((Math.hypot(...a) * Math.hypot(...b)) || 1))));
    if (omega < 1e-6) return a.map((x, i) => (1 - t) * x + t * b[i]);
    return a.map((x, i) => (Math.sin((1 - t) * omega) * x + Math.sin(t * omega) * b[i]) / Math.sin(omega));
  }

  async function codeOf(model, groove) {  // a groove's code in this model: kept from sampling, else encoded
    if (groove.z && groove.model === model.name) return groove.z;
    const z = await model.vae.encode([window4bars(groove.ns, false)]);
    const [row] = await z.array();
    z.dispose();
    return row;
  }

  async function interpolate(model, a, b, steps, temperature, seed) {
    const za = await codeOf(model, a), zb = await codeOf(model, b);
    const codes = Array.from({length: steps}, (_, k) => slerp(za, zb, steps > 1 ? k / (steps - 1) : 0));
    const z = mm.tf.tensor2d(codes);
    const sequences = await decode(model, z, temperature, seed, qpmOf(a.ns));
    z.dispose();
    return grooves(sequences, codes, model, k => `${a.title} → ${b.title}: ${k + 1}/${steps}`, temperature, seed);
  }

  // Humanize / drumify: the beat's code drawn from its posterior, z = mu + T * sigma * eps, then decoded.
  async function play(model, beat, n, temperature, seed) {
    const input = window4bars(beat.ns, model.role === 'humanize');
    const tensors = mm.tf.tidy(() => mm.tf.tile(mm.tf.expandDims(model.vae.dataConverter.toTensor(input), 0),
                                                [n, 1, 1]));
    const [mu, sigma] = await posterior(model, tensors);
    const eps = gaussians(seed, n * model.vae.zDims);
    const z = mm.tf.tidy(() => mu.add(sigma.mul(mm.tf.tensor2d(eps, [n, model.vae.zDims])).mul(temperature)));
    mm.tf.dispose([tensors, mu, sigma]);
    const sequences = await decode(model, z, temperature, seed, qpmOf(input));
    const codes = await z.array();
    z.dispose();
    const verb = model.role === 'humanize' ? 'humanized' : 'drumified';
    return grooves(sequences, codes, model, k => `${beat.title}, ${verb} ${k + 1}`, temperature, seed);
  }

  // ------------------------------------------------------------------ beats
  function gridBeat(grid, pitches, qpm, velocity) {  // a clicked bar ([class][step] booleans), BARS times
    const step = stepSeconds(qpm), notes = [];
    for (let bar = 0; bar < BARS; ++bar) {
      grid.forEach((row, c) => row.forEach((on, s) => {
        if (!on) return;
        const start = (bar * STEPS_PER_BAR + s) * step;
        notes.push({pitch: pitches[c], velocity, startTime: start, endTime: start + step, isDrum: true});
      }));
    }
    if (!notes.length) throw new Error('the pattern is empty: click some steps first');
    return mm.NoteSequence.create({notes, tempos: [{time: 0, qpm}], totalTime: STEPS * step});
  }

  // The first four bars as the models take them: 4/4 throughout; drum notes only for humanize (drumify takes
  // every onset of every track as a tap).  Unquantized: the micro-timing stays (the models quantize it).
  function window4bars(ns, drumsOnly) {
    const meter = (ns.timeSignatures || []).find(m => m.numerator !== 4 || m.denominator !== 4);
    if (meter) throw new Error(`time signature ${meter.numerator}/${meter.denominator}; the models' bars are 4/4`);
    const notes = drumsOnly ? ns.notes.filter(n => n.isDrum) : ns.notes;
    if (!notes.length) throw new Error('no drum notes (MIDI channel 10); drumify takes any notes');
    const qpm = qpmOf(ns);
    const timed = mm.NoteSequence.create({notes, tempos: [{time: 0, qpm}], totalTime: STEPS * stepSeconds(qpm)});
    const quantized = mm.sequences.quantizeNoteSequence(timed, STEPS_PER_QUARTER);  // keeps the notes' order
    timed.notes = notes.filter((n, k) => quantized.notes[k].quantizedStartStep < STEPS);
    if (!timed.notes.length) throw new Error('no notes in the first four bars');
    return timed;
  }

  async function readMidi(file) {
    const ns = mm.midiToSequenceProto(new Uint8Array(await file.arrayBuffer()));
    if (new Set((ns.tempos || []).map(t => Math.round(t.qpm * 1000))).size > 1) {
      throw new Error(`${file.name}: tempo changes; the models play one tempo`);
    }
    if (!ns.notes.length) throw new Error(`${file.name}: no notes`);
    return ns;
  }

  // A note the model plays early on the first step would start before 0: clamped.  The tempo gets its time:
  // magenta.js's decoder leaves it out, and its MIDI writer then never returns.
  function midiBytes(ns) {
    const notes = ns.notes.map(n => ({...n, startTime: Math.max(0, n.startTime), endTime: Math.max(n.endTime, 0.01)}));
    return mm.sequenceProtoToMidi(mm.NoteSequence.create({notes, tempos: [{time: 0, qpm: qpmOf(ns)}],
                                                          totalTime: ns.totalTime}));
  }

  return {STEPS_PER_QUARTER, STEPS_PER_BAR, BARS, qpmOf, stepSeconds, sample, interpolate, play, gridBeat,
          window4bars, readMidi, midiBytes};
};
