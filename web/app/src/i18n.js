// Strings of the shell in English and Chinese. Keys are stable; add both
// languages together.
const strings = {
  en: {
    'app.title': 'City Command',
    'conn.connecting': 'Connecting…',
    'conn.connected': 'Live',
    'conn.reconnecting': 'Reconnecting…',
    'conn.offline': 'Server unreachable',
    'map.title': 'City map',
    'map.pending': 'The map appears here once the city is loaded.',
    'journal.title': 'Duty journal',
    'journal.kind.note': 'Note',
    'journal.kind.handover': 'Handover',
    'journal.kind.instruction': 'Instruction',
    'journal.placeholder': 'Write an entry…',
    'journal.add': 'Add',
    'journal.failed': 'Not saved: ',
    'feed.title': 'Live events',
    'foot.offline': 'Runs fully offline.',
  },
  zh: {
    'app.title': '城市指挥',
    'conn.connecting': '正在连接…',
    'conn.connected': '实时',
    'conn.reconnecting': '正在重连…',
    'conn.offline': '无法连接服务器',
    'map.title': '城市地图',
    'map.pending': '城市数据加载后在此显示地图。',
    'journal.title': '值班日志',
    'journal.kind.note': '记录',
    'journal.kind.handover': '交接班',
    'journal.kind.instruction': '指示',
    'journal.placeholder': '填写日志…',
    'journal.add': '添加',
    'journal.failed': '未保存：',
    'feed.title': '实时事件',
    'foot.offline': '完全离线运行。',
  },
};

const browserLang = (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
let lang = localStorage.getItem('citycmd.lang') || browserLang;

export function t(key) {
  return (strings[lang] && strings[lang][key]) || strings.en[key] || key;
}

export function currentLang() {
  return lang;
}

export function setLang(next) {
  lang = next === 'zh' ? 'zh' : 'en';
  localStorage.setItem('citycmd.lang', lang);
  applyTranslations(document);
}

export function applyTranslations(root) {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll('[data-i18n-placeholder]').forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  });
}
