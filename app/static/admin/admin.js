// faceshot admin: photo picker (upload, drag-and-drop, camera), face boxes, enroll and try-it pages.
// Plain browser JavaScript, no build step. Talks to /admin/api/* with the session cookie + X-CSRF-Token.
(() => {
  'use strict';
  const csrf = document.body.dataset.csrf;
  // The collection the page showed: the server works in it (and checks the right), whatever another tab switched to.
  const collection = document.body.dataset.collection;
  const SVG = 'http://www.w3.org/2000/svg';

  async function post(url, form) {
    const res = await fetch(url, {
      method: 'POST', body: form, credentials: 'same-origin',
      headers: collection ? { 'X-CSRF-Token': csrf, 'X-Faceshot-Collection': collection } : { 'X-CSRF-Token': csrf },
    });
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const err = new Error(data && data.error ? data.error.message : `The request failed (${res.status}).`);
      err.code = data && data.error ? data.error.code : 'http_error';
      err.details = (data && data.error && data.error.details) || {};
      if (res.status === 401) err.message = 'Your session has ended: reload the page and sign in again.';
      throw err;
    }
    return data;
  }

  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v == null) continue;
      if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  function s(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  // An image with an SVG overlay in the image's own pixel coordinates.
  async function stage(url, alt) {
    const img = h('img', { src: url, alt });
    const svg = s('svg', { 'aria-hidden': 'true', preserveAspectRatio: 'none' });
    const root = h('div', { class: 'stage' }, img, svg);
    try { await img.decode(); } catch (_) { /* drawn when it loads */ }
    const w = img.naturalWidth || 1, hgt = img.naturalHeight || 1;
    svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
    return { root, svg, img, w, h: hgt };
  }

  // Labels are measured before they are drawn, in the font the stylesheet gives them (.box text).
  const LABEL_FONT = 'system-ui, sans-serif';
  const measureText = (() => {
    const ctx = document.createElement('canvas').getContext('2d');
    return (text, size) => {
      ctx.font = `700 ${size}px ${LABEL_FONT}`;
      const m = ctx.measureText(text);
      return { width: m.width, ascent: m.fontBoundingBoxAscent || size * 0.93, descent: m.fontBoundingBoxDescent || size * 0.24 };
    };
  })();

  const overlaps = (a, b, gap = 0) => a.x < b.x + b.w + gap && b.x < a.x + a.w + gap && a.y < b.y + b.h + gap && b.y < a.y + a.h + gap;
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

  // Where a face's label goes: above its box, else below, else inside it, each nudged sideways and up or down,
  // always wholly inside the picture and clear of the labels already placed. Clear of the other faces too while
  // the type need shrink no more than a little; past that, covering a face beats unreadable type.
  function labelSpot(box, text, font, taken, others, W, H, stroke) {
    const [x1, y1, x2, y2] = box;
    const free = (r) => !taken.some((t) => overlaps(r, t, stroke));
    const clear = (r) => free(r) && !others.some((o) => overlaps(r, o));
    for (const [fits, smallest] of [[clear, font * 0.6], [free, Math.max(6, font / 3)]]) {
      for (let size = font; size >= smallest; size *= 0.8) {
        const m = measureText(text, size);
        const pad = size * 0.25, padY = size * 0.12;
        const w = m.width + 2 * pad, hgt = m.ascent + m.descent + 2 * padY;
        if (w > W || hgt > H) continue;
        const spots = [];
        for (const row of [y1 - hgt - stroke, y2 + stroke, y1 + stroke, y2 - hgt - stroke]) {
          for (const dy of [0, -1, 1, -2, 2, -3, 3]) {
            for (const dx of [0, -0.5, 0.5, -1, 1, -1.5, 1.5]) {
              spots.push({ x: clamp(x1 + dx * w, 0, W - w), y: clamp(row + dy * hgt, 0, H - hgt), w, h: hgt });
            }
          }
        }
        const spot = spots.find(fits);
        if (spot) return { ...spot, size, pad, ascent: m.ascent, textWidth: m.width };
      }
    }
    return null;  // no room anywhere near: the numbered list beside the photo still says who it is
  }

  // Each face's box, and its label where labelSpot finds room; `faces` come largest first, so big faces choose first.
  function drawFaces(st, faces) {
    const W = st.w, H = st.h || st.w;
    const stroke = Math.max(2, W / 160);
    const widths = faces.map((f) => f.box[2] - f.box[0]).sort((a, b) => a - b);
    const typical = widths.length ? widths[Math.floor(widths.length / 2)] : W;
    // one type size per photo, following its faces (readable when the photo is shown small)
    const font = Math.max(W / 70, Math.min(W / 22, typical * 0.3));
    const rects = faces.map(({ box: [x1, y1, x2, y2] }) => ({ x: x1, y: y1, w: x2 - x1, h: y2 - y1 }));
    const groups = faces.map((f, i) => {
      const g = s('g', { class: `box ${f.cls}` });
      g.append(s('rect', { class: 'face', x: rects[i].x, y: rects[i].y, width: rects[i].w, height: rects[i].h, 'stroke-width': stroke }));
      st.svg.append(g);
      return g;
    });
    const taken = [];
    faces.forEach((f, i) => {
      if (!f.label) return;
      const spot = labelSpot(f.box, f.label, font, taken, rects.filter((_, j) => j !== i), W, H, stroke);
      if (!spot) return;
      taken.push(spot);
      const label = s('g', { class: 'label' });
      label.append(s('rect', { class: 'label-bg', x: spot.x, y: spot.y, width: spot.w, height: spot.h, rx: spot.size * 0.15 }));
      const text = s('text', { x: spot.x + spot.pad, y: spot.y + spot.size * 0.12 + spot.ascent, 'font-size': spot.size,
        textLength: spot.textWidth, lengthAdjust: 'spacingAndGlyphs' });
      text.textContent = f.label;
      label.append(text);
      groups[i].append(label);
    });
    return groups;
  }

  // File input, drag-and-drop and camera, all handing File objects to onPhoto.
  function picker(root, onPhoto, say) {
    const input = root.querySelector('[data-file]');
    const drop = root.querySelector('[data-drop]');
    const cam = root.querySelector('[data-camera]');
    const video = root.querySelector('[data-video]');
    let stream = null;
    input.addEventListener('change', () => {
      for (const f of Array.from(input.files)) onPhoto(f);
      input.value = '';
    });
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      for (const f of Array.from(e.dataTransfer.files)) if (f.type.startsWith('image/')) onPhoto(f);
    });
    const capture = root.querySelector('[data-camera-capture]');
    video.addEventListener('playing', () => { capture.disabled = false; capture.focus(); }); // a frame to take
    const stop = () => {
      capture.disabled = true;
      if (stream) stream.getTracks().forEach((t) => t.stop());
      stream = null;
      video.srcObject = null;
      cam.hidden = true;
    };
    root.querySelector('[data-camera-start]').addEventListener('click', async () => {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        say('This browser cannot use a camera here (the page must be served over HTTPS or from localhost).', 'bad');
        return;
      }
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
      } catch (e) {
        say(`The camera could not be opened: ${e.message || e.name}.`, 'bad');
        return;
      }
      video.srcObject = stream;
      cam.hidden = false;
    });
    root.querySelector('[data-camera-stop]').addEventListener('click', stop);
    capture.addEventListener('click', () => {
      if (!video.videoWidth) { say('The camera is not ready yet.', 'warn'); return; }
      const canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext('2d').drawImage(video, 0, 0);
      canvas.toBlob((blob) => {
        onPhoto(new File([blob], `camera-${Date.now()}.jpg`, { type: 'image/jpeg' }));
        stop();
      }, 'image/jpeg', 0.92);
    });
    return { stop };
  }

  function sayIn(node) {
    return (text, kind = '') => { node.textContent = text; node.className = `status ${kind}`; };
  }

  const fmt = (x) => (x == null ? '–' : Number(x).toFixed(4));  // thresholds are given to 4 places

  // -- enroll --------------------------------------------------------------------------------------
  const QUALITY_CODES = new Set(['face_too_small', 'face_blurry', 'low_detection_confidence']);

  function qualityHints(face) {
    const q = face.quality || {};
    const hints = [];
    if (q.too_small) hints.push(['warn', `The face is small (${Math.round(q.face_size)} px); a closer photo works better.`]);
    if (q.blurry) hints.push(['warn', 'The face looks blurry; a sharper photo works better.']);
    if (q.low_confidence) hints.push(['warn', 'The detector is not sure this is a face (poor light, turned away?).']);
    if (!hints.length) hints.push(['ok', 'Looks good.']);
    return hints;
  }

  const MAX_UPLOAD = Number(document.body.dataset.maxUpload || 0);
  const mb = (n) => (n >= 104858 ? `${Number((n / 1048576).toPrecision(3))} MB` : `${Number((n / 1024).toPrecision(3))} KB`);
  const tooLarge = (file) => `${file.name || 'That photo'} is ${mb(file.size)}; the limit is ${mb(MAX_UPLOAD)}. Use a smaller photo.`;

  // A photo over the server's per-photo limit, or larger than any face needs, is redrawn smaller as a JPEG here
  // (a phone's 48 MP photo is enrolled, not refused). One this browser cannot decode goes as it is: the server judges it.
  const MAX_SIDE = 4096;
  async function fitForUpload(file) {
    let bitmap;
    try { bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' }); } catch (_) { return { file }; }
    const { width, height } = bitmap;
    if (Math.max(width, height) <= MAX_SIDE && (!MAX_UPLOAD || file.size <= MAX_UPLOAD)) { bitmap.close(); return { file }; }
    const canvas = document.createElement('canvas');
    let scale = Math.min(1, MAX_SIDE / Math.max(width, height)), blob = null;
    for (let tries = 0; tries < 12; tries += 1) {
      canvas.width = Math.max(1, Math.round(width * scale));
      canvas.height = Math.max(1, Math.round(height * scale));
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff';  // what a transparent PNG shows through
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.9));
      if (blob && (!MAX_UPLOAD || blob.size <= MAX_UPLOAD)) break;
      scale *= 0.75;
    }
    bitmap.close();
    if (!blob) return { file };
    const small = new File([blob], `${(file.name || 'photo').replace(/\.[^.]*$/, '')}.jpg`, { type: 'image/jpeg' });
    return { file: small, note: `Shrunk from ${width}×${height} (${mb(file.size)}) to ${canvas.width}×${canvas.height} (${mb(small.size)}) before upload.` };
  }

  // Enroll a new person (the Enroll page) or add photos to one (a person's page): the same previews,
  // face choice, size check and warnings; `personId` set means adding.
  function photoForm(form, personId) {
    const MAX = 2;
    const nameInput = document.getElementById('enroll-name');
    const previews = document.getElementById('previews');
    const warnings = document.getElementById('warnings');
    const save = document.getElementById('enroll-save');
    const why = document.getElementById('save-why');
    const say = sayIn(document.getElementById('enroll-status'));
    const photos = [];
    let serial = 0, checkSerial = 0, busy = false, preparing = 0;

    const ready = () => photos.length > 0 && photos.every((p) => p.faces && p.chosen != null);
    function blocker() {
      if (busy) return 'Saving…';
      if (!personId && !nameInput.value.trim()) return 'Enter a name to save.';
      if (!photos.length) return 'Add a photo (upload, drop or camera) to save.';
      if (photos.some((p) => !p.faces)) return 'Checking the photos…';
      if (photos.some((p) => !p.faces.length)) return 'Remove the photo with no face to save.';
      if (photos.some((p) => p.chosen == null)) return 'Choose the face in each photo to save.';
      return '';
    }
    const update = () => { const reason = blocker(); save.disabled = reason !== ''; why.textContent = reason; };
    if (nameInput) nameInput.addEventListener('input', update);
    update();

    async function render(p) {
      // Hold the photo's place synchronously so cards stay in order while images decode.
      if (!previews.querySelector(`[data-photo="${p.id}"]`)) previews.append(h('div', { class: 'preview', 'data-photo': p.id }));
      const card = h('div', { class: 'preview', 'data-photo': p.id });
      const index = photos.indexOf(p) + 1;
      card.append(h('h3', { text: `Photo ${index}` }));
      if (!p.faces && !p.error) {
        card.append(h('p', { class: 'status', text: 'Checking the photo…' }));
      } else {
        const st = await stage(p.url, `Photo ${index}`);
        card.append(st.root);
        const hints = h('ul', { class: 'hints' });
        if (p.error) hints.append(h('li', { class: 'bad', text: p.error }));
        else if (!p.faces.length) hints.append(h('li', { class: 'bad', text: 'No face found. Use a photo where the face is clear and facing the camera.' }));
        const several = p.faces && p.faces.length > 1;
        drawFaces(st, (p.faces || []).map((f, i) => ({ box: f.box, label: several ? `${i + 1}` : '', cls: p.chosen === i ? 'chosen' : 'other' })))
          .forEach((g, i) => { if (several) g.addEventListener('click', () => choose(p, i)); });
        if (p.faces && p.faces.length > 1) {
          const group = h('fieldset', { class: 'choose' }, h('legend', { text: `${p.faces.length} faces: which one is this person?` }));
          p.faces.forEach((f, i) => {
            const id = `face-${p.id}-${i}`;
            group.append(h('span', { class: 'choice' },
              h('input', { type: 'radio', id, name: `face-${p.id}`, checked: p.chosen === i, onchange: () => choose(p, i) }),
              h('label', { for: id, text: `Face ${i + 1}` })));
          });
          card.append(group);
          if (p.chosen == null) hints.append(h('li', { class: 'warn', text: 'Several faces: choose the person to enroll (click the box or pick a number).' }));
        }
        if (p.chosen != null) for (const [kind, text] of qualityHints(p.faces[p.chosen])) hints.append(h('li', { class: kind, text }));
        card.append(hints);
        if (p.note) card.append(h('p', { class: 'meta shrunk', text: p.note }));
      }
      card.append(h('button', { type: 'button', class: 'small', text: 'Remove photo', 'aria-label': `Remove photo ${index}`, onclick: () => remove(p) }));
      const old = previews.querySelector(`[data-photo="${p.id}"]`);
      if (old) old.replaceWith(card); // else removed meanwhile
    }

    function choose(p, i) {
      p.chosen = i;
      render(p).then(() => { const r = document.getElementById(`face-${p.id}-${i}`); if (r) r.focus(); });
      check();
      update();
    }

    function remove(p) {
      photos.splice(photos.indexOf(p), 1);
      URL.revokeObjectURL(p.url);
      previews.innerHTML = '';
      photos.forEach(render);
      check();
      update();
      nameInput.focus();
    }

    function boxes() {
      return photos.map((p) => p.faces[p.chosen].box.join(','));
    }

    async function check() {
      const mine = ++checkSerial;
      warnings.innerHTML = '';
      if (!ready()) return;
      const fd = new FormData();
      photos.forEach((p) => fd.append('images', p.file));
      boxes().forEach((b) => fd.append('boxes', b));
      if (personId) fd.append('person_id', personId);
      warnings.append(h('p', { class: 'status', text: 'Comparing with the people already enrolled…' }));
      let res;
      try { res = await post('/admin/api/check', fd); } catch (e) {
        if (mine === checkSerial) { warnings.innerHTML = ''; warnings.append(h('p', { class: 'notice bad', text: e.message })); }
        return;
      }
      if (mine !== checkSerial) return;
      warnings.innerHTML = '';
      if (!res.warnings.filter((x) => !QUALITY_CODES.has(x.code)).length) {
        warnings.append(h('p', { class: 'notice ok', id: 'check-ok', text: 'No conflicts with the people already enrolled.' }));
        return;
      }
      const list = h('ul', { class: 'notice warn', id: 'check-warnings' });
      const offered = new Set();
      // the photo's own quality is told under its preview; the list is about the people already enrolled
      for (const w of res.warnings.filter((x) => !QUALITY_CODES.has(x.code))) {
        let text = `Photo ${w.image_index + 1}: ${w.message}`;
        if (w.code === 'looks_like_other_person') text += ` (distance ${fmt(w.distance)}` + (w.distance_to_own == null ? ')' : `; to this person's other photos ${fmt(w.distance_to_own)})`);
        const item = h('li', { text });
        // The likely mistake: a new "person" who is already enrolled. Offer to add the photos to them instead.
        if (w.code === 'looks_like_other_person' && !personId && w.person && !offered.has(w.person.id)) {
          offered.add(w.person.id);
          item.append(' ', h('button', { type: 'button', class: 'small', text: `Add ${photos.length > 1 ? 'these photos' : 'this photo'} to ${w.person.name} instead`,
            onclick: () => addTo(w.person.id) }));
        }
        list.append(item);
      }
      warnings.append(list);
    }

    function photoData() {
      const fd = new FormData();
      photos.forEach((p) => fd.append('images', p.file));
      boxes().forEach((b) => fd.append('boxes', b));
      return fd;
    }

    async function send(url, fd) {
      busy = true;
      update();
      say('Saving…');
      try {
        const res = await post(url, fd);
        window.location.assign(res.url);
      } catch (err) {
        busy = false;
        update();
        if (err.code === 'person_exists') { sameName(err.details, fd); return; }
        say(err.message, 'bad');
      }
    }

    // Enrolled already under this name, and it is their face: add the photos to them, or say it is someone else.
    function sameName(details, fd) {
      const status = document.getElementById('enroll-status');
      say(`${details.name} is already enrolled, and photo ${details.image_index + 1} is their face ` +
          `(distance ${fmt(details.distance)}, within ${fmt(details.threshold)}).`, 'warn');
      status.append(' ',
        h('button', { type: 'button', class: 'small', text: `Add ${photos.length > 1 ? 'these photos' : 'this photo'} to ${details.name}`,
          onclick: () => addTo(details.person_id) }), ' ',
        h('button', { type: 'button', class: 'small', text: `Enroll another person named ${details.name}`,
          onclick: () => { fd.set('new_person', 'true'); send('/admin/api/enroll', fd); } }));
    }

    const addTo = (id) => send(`/admin/api/people/${encodeURIComponent(id)}/faces`, photoData());

    async function add(picked) {
      if (photos.length + preparing >= MAX) { say('Two photos are enough; remove one to use another.', 'warn'); return; }
      preparing += 1;
      let fitted;
      try { fitted = await fitForUpload(picked); } finally { preparing -= 1; }
      const { file, note } = fitted;
      if (MAX_UPLOAD && file.size > MAX_UPLOAD) {  // refused here, before any of it is sent
        say(tooLarge(picked), 'bad');
        return;
      }
      say('');
      const p = { id: ++serial, file, url: URL.createObjectURL(file), faces: null, chosen: null, note };
      photos.push(p);
      update();
      await render(p);
      const fd = new FormData();
      fd.append('image', file);
      try {
        const res = await post('/admin/api/detect', fd);
        p.faces = res.faces; // largest first
        if (p.faces.length === 1) p.chosen = 0;
        else if (p.faces.length > 1) {
          const area = (f) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
          if (area(p.faces[0]) >= 2 * area(p.faces[1])) p.chosen = 0;
        }
      } catch (e) {
        p.error = e.message;
        p.faces = [];
      }
      if (!photos.includes(p)) return;
      await render(p);
      update();
      check();
    }

    picker(form.querySelector('.picker'), add, say);

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const reason = blocker();
      if (reason) { say(reason, 'bad'); if (nameInput && !nameInput.value.trim()) nameInput.focus(); return; }
      if (personId) { send(`/admin/api/people/${encodeURIComponent(personId)}/faces`, photoData()); return; }
      const fd = photoData();
      fd.append('name', nameInput.value.trim());
      const external = document.getElementById('enroll-external-id').value.trim();
      const meta = document.getElementById('enroll-metadata').value.trim();
      if (external) fd.append('external_id', external);
      if (meta) {
        try { if (typeof JSON.parse(meta) !== 'object' || Array.isArray(JSON.parse(meta))) throw new Error(); } catch (_) {
          say('Metadata must be a JSON object, e.g. {"team": "reception"}.', 'bad');
          return;
        }
        fd.append('metadata', meta);
      }
      send('/admin/api/enroll', fd);
    });
  }

  // -- try it -----------------------------------------------------------------------------------------
  // Each face as the API decided it: named when `person` says so, Unknown otherwise (never by a similarity cut-off),
  // with the distance against the threshold it was held to and the share of strangers that threshold lets in.
  const pct = (r) => `${(r * 100).toPrecision(3)}%`;

  function explain(f) {
    if (f.distance == null) return 'No one is enrolled yet, so every face is Unknown.';
    const rate = f.stranger_accept_rate == null ? 'stranger-accept rate not known' : `stranger-accept rate ${pct(f.stranger_accept_rate)}`;
    const nearest = f.candidates && f.candidates.length && f.candidates[0].person ? f.candidates[0].person.name : 'the nearest enrolled person';
    const verdict = f.person ? `within the threshold ${fmt(f.threshold)} (${rate}): named ${f.person.name}.`
      : `beyond the threshold ${fmt(f.threshold)} (${rate}): Unknown.`;
    return `Nearest: ${nearest}, distance ${fmt(f.distance)} ${verdict}`;
  }

  function tryPage() {
    const out = document.getElementById('try-result');
    const say = sayIn(document.getElementById('try-status'));
    let serial = 0;

    async function identify(picked) {
      const mine = ++serial;
      out.innerHTML = '';
      say('Looking…');
      const { file, note } = await fitForUpload(picked);
      if (mine !== serial) return;
      if (MAX_UPLOAD && file.size > MAX_UPLOAD) { say(tooLarge(picked), 'bad'); return; }
      const fd = new FormData();
      fd.append('image', file);
      let res;
      try { res = await post('/admin/api/identify', fd); } catch (e) { if (mine === serial) say(e.message, 'bad'); return; }
      if (mine !== serial) return;
      const url = URL.createObjectURL(file);
      const st = await stage(url, 'The photo you tried');
      const list = h('ol', { class: 'results' });
      drawFaces(st, res.faces.map((f, i) => ({ box: f.box, label: `${i + 1}. ${f.person ? f.person.name : 'Unknown'}`, cls: f.person ? 'known' : 'unknown' })));
      res.faces.forEach((f, i) => {
        const name = f.person ? f.person.name : 'Unknown';
        const item = h('li', { class: f.person ? 'known' : 'unknown', 'data-face': i + 1 });
        item.append(h('h2', { class: 'decision', text: `Face ${i + 1}: ${name}` }));
        item.append(h('p', { class: 'numbers', text: explain(f) }));
        if (f.candidates && f.candidates.length) {
          const table = h('table', {}, h('caption', { text: 'Nearest enrolled people' }),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Person' }), h('th', { scope: 'col', text: 'Distance' }))));
          const body = h('tbody');
          for (const c of f.candidates) {
            const who = c.person ? h('a', { href: `/admin/people/${encodeURIComponent(c.person.id)}`, text: c.person.name }) : 'someone';
            body.append(h('tr', { class: c.match ? 'match' : null }, h('td', {}, who, c.match ? ' (named)' : null), h('td', { text: fmt(c.distance) })));
          }
          table.append(body);
          item.append(h('div', { class: 'table-wrap' }, table));
        }
        const q = f.quality || {};
        const notes = [q.too_small && 'small face', q.blurry && 'blurry', q.low_confidence && 'unsure detection'].filter(Boolean);
        if (notes.length) item.append(h('p', { class: 'meta', text: `Photo quality: ${notes.join(', ')}.` }));
        list.append(item);
      });
      out.append(h('div', { class: 'try-grid' }, st.root, list));
      const found = res.faces.length ? `${res.faces.length} face${res.faces.length > 1 ? 's' : ''} found (${Math.round(res.took_ms)} ms).` : 'No face found in this photo.';
      say(note ? `${found} ${note}` : found, res.faces.length ? 'ok' : 'warn');
    }

    picker(document.querySelector('.picker'), identify, say);
  }

  // -- live ----------------------------------------------------------------------------------------
  // The camera recognised a few times a second: one frame at a time (the next is sent when the answer is back,
  // so a slow CPU lowers the rate instead of queueing frames), boxes drawn over the video in its own pixels.
  function livePage() {
    const start = document.getElementById('live-start'), stopButton = document.getElementById('live-stop');
    const video = document.getElementById('live-video'), svg = document.getElementById('live-overlay');
    const stageNode = document.getElementById('live-stage'), list = document.getElementById('live-faces');
    const say = sayIn(document.getElementById('live-status'));
    const canvas = document.createElement('canvas');
    let stream = null, running = false;

    function draw(faces) {
      svg.setAttribute('viewBox', `0 0 ${video.videoWidth} ${video.videoHeight}`);
      svg.innerHTML = '';
      list.innerHTML = '';
      const st = { svg, w: video.videoWidth, h: video.videoHeight };
      drawFaces(st, faces.map((f) => ({ box: f.box, label: f.person ? f.person.name : 'Unknown', cls: f.person ? 'known' : 'unknown' })));
      faces.forEach((f, i) => {
        const name = f.person ? f.person.name : 'Unknown';
        list.append(h('li', { class: f.person ? 'known' : 'unknown', 'data-face': i + 1 },
          h('span', { class: 'decision', text: name }),
          h('span', { class: 'meta', text: f.distance == null ? '' : ` distance ${fmt(f.distance)} (threshold ${fmt(f.threshold)})` })));
      });
    }

    async function loop() {
      let frames = 0;
      const began = performance.now();
      while (running) {
        if (!video.videoWidth) { await new Promise((r) => setTimeout(r, 100)); continue; }
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        canvas.getContext('2d').drawImage(video, 0, 0);
        const blob = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.85));
        const fd = new FormData();
        fd.append('image', new File([blob], 'frame.jpg', { type: 'image/jpeg' }));
        try {
          const res = await post('/admin/api/identify', fd);
          if (!running) break;
          draw(res.faces);
          frames += 1;
          const rate = frames / ((performance.now() - began) / 1000);
          say(`${res.faces.length} face${res.faces.length === 1 ? '' : 's'} in view · ${rate.toFixed(1)} frames/s`, 'ok');
        } catch (e) {
          say(e.message, 'bad');
          if (e.code === 'http_error' || /session/.test(e.message)) break;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }

    start.addEventListener('click', async () => {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        say('This browser cannot use a camera here (the page must be served over HTTPS or from localhost).', 'bad');
        return;
      }
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
      } catch (e) { say(`The camera could not be opened: ${e.message || e.name}.`, 'bad'); return; }
      video.srcObject = stream;
      stageNode.hidden = false;
      start.disabled = true;
      stopButton.disabled = false;
      running = true;
      say('Recognising…');
      loop();
    });
    stopButton.addEventListener('click', () => {
      running = false;
      if (stream) stream.getTracks().forEach((t) => t.stop());
      stream = null;
      video.srcObject = null;
      stageNode.hidden = true;
      start.disabled = false;
      stopButton.disabled = true;
      say('Stopped.');
    });
  }

  // -- review ----------------------------------------------------------------------------------------
  // The suggestions queue from the keyboard: one item is current (focused); a, n and d submit its Accept, Not this
  // person and Dismiss forms (the server answers with the page again, the next item first), s moves on.
  function reviewPage() {
    const items = Array.from(document.querySelectorAll('#suggestions > .review-item'));
    if (!items.length) return;
    let current = 0;
    const focus = (i) => {
      items.forEach((item, j) => item.classList.toggle('current', j === i));
      current = i;
      items[i].focus();
    };
    items.forEach((item, i) => item.addEventListener('focusin', () => { if (current !== i) focus(i); }));
    document.addEventListener('keydown', (e) => {
      if (e.altKey || e.ctrlKey || e.metaKey || e.target.closest('input, textarea, select')) return;
      const key = e.key.toLowerCase();
      if (key === 's') { e.preventDefault(); focus((current + 1) % items.length); return; }
      const form = items[current].querySelector(`form[data-key="${key}"]`);
      if (!form) return;
      e.preventDefault();
      form.querySelectorAll('button').forEach((b) => { b.disabled = true; });
      form.submit();
    });
    focus(0);
  }

  // -- times ----------------------------------------------------------------------------------------
  // The server writes every time in UTC (<time datetime> with UTC in its title); here it is read in the
  // browser's own time zone, in the same sortable YYYY-MM-DD HH:MM:SS shape.
  function localTimes() {
    const two = (n) => String(n).padStart(2, '0');
    const times = document.querySelectorAll('time[datetime]');
    for (const t of times) {
      const d = new Date(t.getAttribute('datetime'));
      if (Number.isNaN(d.getTime())) continue;
      const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
      const minute = `${day} ${two(d.getHours())}:${two(d.getMinutes())}`;
      t.textContent = { day, minute }[t.dataset.precision] || `${minute}:${two(d.getSeconds())}`;
    }
    const note = document.getElementById('tz-note');
    if (times.length && note) {
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      note.textContent = `Times are in your time zone${zone ? ` (${zone})` : ''}; point at one to see it in UTC.`;
      note.hidden = false;
    }
  }

  localTimes();
  const page = document.body.dataset.page;
  if (page === 'enroll') photoForm(document.getElementById('enroll-form'), null);
  const addForm = document.getElementById('add-form');  // not there for a viewer
  if (page === 'person' && addForm) photoForm(addForm, addForm.dataset.personId);
  if (page === 'try') tryPage();
  if (page === 'live') livePage();
  if (page === 'review') reviewPage();
})();
