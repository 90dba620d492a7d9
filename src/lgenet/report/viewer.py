"""``lgenet view``: a local page to check every mask (since 0.3.0).

:func:`build_viewer` turns a ``segment apply --manifest`` output folder (``segmentation.csv``) or a ``segment
train`` run (``seg_metrics.csv``, its out-of-fold masks) into a static folder:

* ``index.html``: the patients in a sortable table (status, LGE % predicted and expert, Dice where an expert mask
  exists, the quality score and flag, notes); a click (or Enter) opens a patient;
* ``p/<ID>.js``: one patient's slices (apex to base) as 8-bit PNG data (the image over its 1st-99.5th
  percentiles) with the predicted and, when the manifest has one, the expert class map, loaded only when the
  patient is opened, so that a 100-patient cohort's table appears at once.

The patient view shows the slice with the predicted mask and, beside it, the expert's, with the overlay's
opacity, window and level, and keys: left/right the slice, up/down the previous/next patient in the table's order,
``o`` the overlay, ``z`` the zoom on the LV, ``Esc`` the table. It needs no network: everything is in the folder, which opens from disk
(``file://``) or from :func:`serve`, which listens on 127.0.0.1 only. Patients are named by their study-local IDs.
``index.html?patient=ID`` opens a patient; ``&keys=ArrowRight,o`` presses those keys once it is shown (the tests'
way to press keys in a headless browser).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lgenet.errors import ConfigError
from lgenet.utils import atomic_write_text

__all__ = ["build_viewer", "read_source", "read_rows", "serve", "VIEW_COLUMNS"]

#: the table's columns: (CSV column, header)
VIEW_COLUMNS = (
    ("patient_id", "patient"),
    ("status", "status"),
    ("lge_percent_pred", "LGE % (predicted)"),
    ("lge_percent_expert", "LGE % (expert)"),
    ("dice_myo", "Dice myocardium"),
    ("dice_lge", "Dice enhancement"),
    ("quality_dice", "quality (predicted Dice)"),
    ("quality_flag", "quality flag"),
    ("notes", "notes"),
)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_source(src: Path):
    """(rows, manifest path, predicted-mask labels, expert-mask labels, config, what it is) of a folder."""
    from lgenet.runs.seg import SegRunDir

    if (src / "segmentation.csv").is_file() and (src / "apply.json").is_file():
        if not (src / "manifest.csv").is_file():
            raise ConfigError(
                f"{src}: `segment apply` was given input paths, not a --manifest; the viewer needs the cohort's "
                "manifest.csv (rerun apply with --manifest)"
            )
        job = json.loads((src / "apply.json").read_text())
        cfg = SegRunDir(job["run"]).load_config()
        settings = job.get("settings") or {}
        expert = cfg.replace(labels=settings["labels"]).seg_labels() if settings.get("labels") else cfg.seg_labels()
        return read_rows(src / "segmentation.csv"), src / "manifest.csv", cfg.seg_labels(), expert, cfg, "segment apply"
    if (src / "seg_metrics.csv").is_file():
        cfg = SegRunDir(src).load_config()
        return (
            read_rows(src / "seg_metrics.csv"),
            Path(cfg.manifest),
            cfg.seg_labels(),
            cfg.seg_labels(),
            cfg,
            "segment train",
        )
    raise ConfigError(
        f"{src}: neither a `segment apply --manifest` output (segmentation.csv, apply.json) nor a `segment train` "
        "run (seg_metrics.csv); give one of them"
    )


def _png(a: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a, np.uint8)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _to8(vol: np.ndarray) -> np.ndarray:
    v = vol[np.isfinite(vol)]
    lo, hi = np.percentile(v, [1.0, 99.5]) if v.size else (0.0, 1.0)
    return np.clip((vol - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)


def _patient(rec, pred_mask: Path | None, pred_labels, exp_labels, cfg) -> dict:
    from lgenet.data.stacks import read_stack

    axes = {"nifti_slice_axis": cfg.nifti_slice_axis, "nifti_basal_end": cfg.nifti_basal_end}
    st = read_stack(rec.image, pred_mask, labels=pred_labels, default_spacing=cfg.pixel_spacing, **axes)
    expert = None
    if rec.mask is not None and Path(rec.mask).is_file():
        expert = read_stack(rec.image, rec.mask, labels=exp_labels, default_spacing=cfg.pixel_spacing, **axes).classes
    img = _to8(st.image)
    slices = []
    for k in range(img.shape[0]):
        s = {"img": _png(img[k])}
        if st.classes is not None:
            s["pred"] = _png(st.classes[k])
        if expert is not None:
            s["exp"] = _png(expert[k])
        slices.append(s)
    return {"spacing": [float(v) for v in st.spacing], "slices": slices, "expert": expert is not None}


def build_viewer(src: str | Path, out: str | Path, *, on_patient: Callable[[], None] | None = None) -> Path:
    """Write the viewer of ``src`` (an apply output or a segmentation run) into the folder ``out``; its index."""
    from lgenet.data.manifest import load_manifest
    from lgenet.segment.cases import safe_id

    src, out = Path(src), Path(out)
    rows, manifest, pred_labels, exp_labels, cfg, kind = read_source(src)
    cohort = load_manifest(manifest, tasks=None)
    recs = {r.patient_id: r for r in cohort.records}
    missing = [r["patient_id"] for r in rows if r["patient_id"] not in recs]
    if missing:
        raise ConfigError(f"{src}: patient(s) {', '.join(missing[:5])} are not in the manifest {manifest}")
    (out / "p").mkdir(parents=True, exist_ok=True)
    table = []
    for r in rows:
        pid = r["patient_id"]
        mask = src / r["mask"] if r.get("mask") else src / "masks" / f"{safe_id(pid)}.nii.gz"
        data = _patient(recs[pid], mask if mask.is_file() else None, pred_labels, exp_labels, cfg)
        data["id"] = pid
        name = safe_id(pid)
        atomic_write_text(out / "p" / f"{name}.js", "LGENET.load(" + json.dumps(data) + ");\n")
        table.append({"file": name, **{c: r.get(c, "") for c, _ in VIEW_COLUMNS}})
        if on_patient is not None:
            on_patient()
    title = f"lgenet viewer: {len(rows)} patients ({kind})"
    # a column no row fills (a training run has no status or quality columns) is left out
    columns = [c for c in VIEW_COLUMNS if c[0] == "patient_id" or any(str(t.get(c[0], "")).strip() for t in table)]
    html = (
        _PAGE.replace("__TITLE__", title)
        .replace("__COLUMNS__", json.dumps(columns))
        .replace("__ROWS__", json.dumps(table).replace("</", "<\\/"))
    )
    index = out / "index.html"
    atomic_write_text(index, html)
    return index


def serve(folder: str | Path, *, port: int = 0, open_browser: bool = True) -> None:
    """Serve ``folder`` on 127.0.0.1 only (``port`` 0: a free one) until interrupted."""
    import functools
    import http.server
    import webbrowser

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - no request lines on the terminal
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as srv:
        url = f"http://127.0.0.1:{srv.server_address[1]}/index.html"
        print(f"lgenet viewer at {url} (this machine only; Ctrl-C to stop)", flush=True)
        if open_browser:
            webbrowser.open(url)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass


_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:10px 16px;background:#263238;color:#fff}
header small{color:#b0bec5;margin-left:12px}
#table{padding:12px 16px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{cursor:pointer;background:#eceff1;position:sticky;top:0;user-select:none}
th.sorted::after{content:attr(data-dir)}
tr.row:hover,tr.row.sel{background:#e3f2fd;cursor:pointer}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.flag{color:#b71c1c;font-weight:600}
#viewer{display:none;padding:12px 16px}
.views{display:flex;gap:16px;flex-wrap:wrap}
.views figure{margin:0}
.views figcaption{font-weight:600;margin-bottom:4px}
canvas{image-rendering:pixelated;background:#000;border:1px solid #999}
.controls{margin:10px 0;display:flex;gap:18px;flex-wrap:wrap;align-items:center}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:middle}
.help{color:#555;font-size:12px}
</style></head>
<body data-ready="0">
<header><b>__TITLE__</b><small>research use, not a medical device</small></header>
<section id="table"><table id="patients"><thead><tr></tr></thead><tbody></tbody></table>
<p class="help">Click a column to sort; click a patient (or select with up/down and press Enter) to view it.</p></section>
<section id="viewer">
<div><button id="back">&larr; table (Esc)</button> <b id="pid"></b> <span id="pinfo"></span></div>
<div class="controls">
<label>slice <input id="slice" type="range" min="0" value="0"> <span id="slabel"></span></label>
<label><input id="overlay" type="checkbox" checked> overlay (o)</label>
<label><input id="zoom" type="checkbox" checked> zoom on the LV (z)</label>
<label>opacity <input id="opacity" type="range" min="0" max="100" value="45"></label>
<label>level <input id="level" type="range" min="0" max="255" value="128"></label>
<label>window <input id="window" type="range" min="8" max="512" value="255"></label>
<span class="legend"><span style="background:rgb(30,136,229)"></span>LV cavity<span style="background:rgb(67,160,71)"></span>myocardium<span style="background:rgb(229,57,53)"></span>enhanced</span>
</div>
<div class="views"><figure><figcaption>predicted</figcaption><canvas id="cpred"></canvas></figure>
<figure id="fexp"><figcaption>expert</figcaption><canvas id="cexp"></canvas></figure></div>
<p class="help">Keys: left/right slice (apex to base), up/down previous/next patient, o overlay, z zoom, Esc table.</p>
</section>
<script>
const COLUMNS = __COLUMNS__;
const ROWS = __ROWS__;
const COLORS = {1:[30,136,229],2:[67,160,71],3:[229,57,53]};
let order = ROWS.map((r,i)=>i), sortCol = null, sortDir = 1, current = -1, sel = 0, P = null, S = 0;
const cache = {};
function num(v){const x=parseFloat(v);return isFinite(x)?x:null}
function fmt(c,v){const x=num(v);if(x===null||c==='patient_id')return v||'';return Math.abs(x)>=10?x.toFixed(1):x.toFixed(3)}
function drawTable(){
  const head=document.querySelector('#patients thead tr');head.innerHTML='';
  COLUMNS.forEach(([c,h])=>{const th=document.createElement('th');th.textContent=h;
    if(c===sortCol){th.className='sorted';th.dataset.dir=sortDir>0?' \u25b2':' \u25bc'}
    th.onclick=()=>{sortDir=(sortCol===c)?-sortDir:1;sortCol=c;sortRows();drawTable()};head.appendChild(th)});
  const body=document.querySelector('#patients tbody');body.innerHTML='';
  order.forEach((i,k)=>{const r=ROWS[i];const tr=document.createElement('tr');tr.className='row'+(k===sel?' sel':'');
    COLUMNS.forEach(([c])=>{const td=document.createElement('td');td.textContent=fmt(c,r[c]);
      if(num(r[c])!==null&&c!=='patient_id')td.className='num';if(c==='quality_flag'&&r[c])td.className='flag';tr.appendChild(td)});
    tr.onclick=()=>openPatient(k);body.appendChild(tr)});
  document.body.dataset.rows=String(order.length);
}
function sortRows(){order.sort((a,b)=>{const x=ROWS[a][sortCol],y=ROWS[b][sortCol];const nx=num(x),ny=num(y);
  if(nx!==null&&ny!==null)return sortDir*(nx-ny);if(nx!==null)return -1;if(ny!==null)return 1;
  return sortDir*String(x).localeCompare(String(y))})}
const LGENET={load(d){cache[d.id]=d;if(ROWS[order[current]]&&ROWS[order[current]].patient_id===d.id)show(d)}};
function openPatient(k){current=k;sel=k;const r=ROWS[order[k]];
  document.getElementById('table').style.display='none';document.getElementById('viewer').style.display='block';
  document.getElementById('pid').textContent=r.patient_id;
  document.getElementById('pinfo').textContent=' '+[r.status,r.lge_percent_pred!==''?'LGE '+fmt('x',r.lge_percent_pred)+' % predicted':'',
    r.lge_percent_expert?fmt('x',r.lge_percent_expert)+' % expert':'',r.quality_flag?'flag: '+r.quality_flag:''].filter(Boolean).join(' \u00b7 ');
  if(cache[r.patient_id]){show(cache[r.patient_id]);return}
  const s=document.createElement('script');s.src='p/'+r.file+'.js';s.onerror=()=>console.error('could not load p/'+r.file+'.js');document.head.appendChild(s)}
function back(){document.getElementById('viewer').style.display='none';document.getElementById('table').style.display='block';drawTable()}
function decode(url){return new Promise(res=>{const im=new Image();im.onload=()=>{const c=document.createElement('canvas');c.width=im.width;c.height=im.height;
  const g=c.getContext('2d');g.drawImage(im,0,0);res(g.getImageData(0,0,im.width,im.height))};im.onerror=()=>{console.error('image failed to decode');res(null)};im.src=url})}
async function show(d){P=d;S=Math.min(S,d.slices.length-1);if(!P.decoded){P.decoded=await Promise.all(d.slices.map(async s=>({
  img:await decode(s.img),pred:s.pred?await decode(s.pred):null,exp:s.exp?await decode(s.exp):null})));P.box=bbox(P)}
  const sl=document.getElementById('slice');sl.max=String(d.slices.length-1);sl.value=String(S);
  document.getElementById('fexp').style.display=d.expert?'block':'none';draw();
  document.body.dataset.patient=d.id;
  const keys=new URLSearchParams(location.search).get('keys');  // replayed once: how the tests press keys
  if(keys&&!window.replayed){window.replayed=true;keys.split(',').forEach(k=>document.dispatchEvent(new KeyboardEvent('keydown',{key:k})))}
  document.body.dataset.ready='1'}
function bbox(d){let x0=1e9,y0=1e9,x1=-1,y1=-1;d.decoded.forEach(s=>[s.pred,s.exp].forEach(m=>{if(!m)return;
  for(let y=0;y<m.height;y++)for(let x=0;x<m.width;x++)if(m.data[4*(y*m.width+x)]){if(x<x0)x0=x;if(x>x1)x1=x;if(y<y0)y0=y;if(y>y1)y1=y}}));
  const w=d.decoded[0].img.width,h=d.decoded[0].img.height;if(x1<0)return[0,0,w,h];
  const side=Math.max(x1-x0,y1-y0)*1.8+16,cx=(x0+x1)/2,cy=(y0+y1)/2;
  const a=Math.max(0,Math.round(cx-side/2)),b=Math.max(0,Math.round(cy-side/2));return[a,b,Math.min(w-a,Math.round(side)),Math.min(h-b,Math.round(side))]}
function paint(canvas,img,mask){const w=img.width,h=img.height;
  const off=document.createElement('canvas');off.width=w;off.height=h;const og=off.getContext('2d');const out=og.createImageData(w,h);
  const L=+document.getElementById('level').value,W=+document.getElementById('window').value;
  const on=document.getElementById('overlay').checked,a=+document.getElementById('opacity').value/100;
  for(let i=0;i<w*h;i++){let v=(img.data[4*i]-(L-W/2))/W*255;v=v<0?0:v>255?255:v;let r=v,gg=v,b=v;
    const m=mask&&on?mask.data[4*i]:0;if(m&&COLORS[m]){const c=COLORS[m];r=(1-a)*r+a*c[0];gg=(1-a)*gg+a*c[1];b=(1-a)*b+a*c[2]}
    out.data[4*i]=r;out.data[4*i+1]=gg;out.data[4*i+2]=b;out.data[4*i+3]=255}
  og.putImageData(out,0,0);
  const [x0,y0,cw,ch]=document.getElementById('zoom').checked?P.box:[0,0,w,h];const sc=480/Math.max(cw,ch);
  canvas.width=Math.round(cw*sc);canvas.height=Math.round(ch*sc);const g=canvas.getContext('2d');g.imageSmoothingEnabled=false;
  g.drawImage(off,x0,y0,cw,ch,0,0,canvas.width,canvas.height)}
function draw(){if(!P||!P.decoded)return;const s=P.decoded[S];paint(document.getElementById('cpred'),s.img,s.pred);
  if(P.expert)paint(document.getElementById('cexp'),s.img,s.exp);
  document.getElementById('slabel').textContent=(S+1)+' / '+P.slices.length+(S===0?' (apex)':S===P.slices.length-1?' (base)':'');
  document.body.dataset.slice=String(S);document.body.dataset.overlay=document.getElementById('overlay').checked?'1':'0'}
['overlay','zoom','opacity','level','window'].forEach(id=>document.getElementById(id).addEventListener('input',draw));
document.getElementById('slice').addEventListener('input',e=>{S=+e.target.value;draw()});
document.getElementById('back').onclick=back;
document.addEventListener('keydown',e=>{const inView=document.getElementById('viewer').style.display==='block';
  if(!inView){if(e.key==='ArrowDown'){sel=Math.min(sel+1,order.length-1);drawTable()}else if(e.key==='ArrowUp'){sel=Math.max(sel-1,0);drawTable()}
    else if(e.key==='Enter'){openPatient(sel)}return}
  if(e.key==='ArrowRight'&&P){S=Math.min(S+1,P.slices.length-1);document.getElementById('slice').value=S;draw()}
  else if(e.key==='ArrowLeft'&&P){S=Math.max(S-1,0);document.getElementById('slice').value=S;draw()}
  else if(e.key==='ArrowDown'&&current<order.length-1){openPatient(current+1)}
  else if(e.key==='ArrowUp'&&current>0){openPatient(current-1)}
  else if(e.key==='o'){const o=document.getElementById('overlay');o.checked=!o.checked;draw()}
  else if(e.key==='z'){const z=document.getElementById('zoom');z.checked=!z.checked;draw()}
  else if(e.key==='Escape'){back()}});
drawTable();
const q=new URLSearchParams(location.search).get('patient');
if(q){const k=order.findIndex(i=>ROWS[i].patient_id===q);if(k>=0){openPatient(k)}else{
  const n=document.createElement('p');n.className='help';n.textContent='No patient '+q+' in this viewer: choose one below.';
  document.getElementById('table').prepend(n);document.body.dataset.ready='1'}}else{document.body.dataset.ready='1'}
</script></body></html>
"""
