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
    'map.search': 'Search streets and places…',
    'map.layers': 'Layers',
    'map.layer.roads': 'Roads',
    'map.layer.buildings': 'Buildings',
    'map.layer.water': 'Water',
    'map.layer.labels': 'Labels',
    'map.layer.districts': 'Districts',
    'map.district.fire': 'Fire district',
    'map.district.police': 'Police precinct',
    'map.district.ems': 'EMS zone',
    'map.district.admin': 'Administrative area',
    'map.district.all': 'All districts',
    'map.theme': 'Day / night',
    'journal.title': 'Duty journal',
    'journal.kind.note': 'Note',
    'journal.kind.handover': 'Handover',
    'journal.kind.instruction': 'Instruction',
    'journal.placeholder': 'Write an entry…',
    'journal.add': 'Add',
    'journal.failed': 'Not saved: ',
    'feed.title': 'Live events',
    'foot.offline': 'Runs fully offline.',
    'auth.title': 'Sign in to the command centre',
    'auth.username': 'Username',
    'auth.password': 'Password',
    'auth.submit': 'Sign in',
    'auth.note': 'Every action is recorded with your name.',
    'auth.logout': 'Sign out',
    'auth.failed': 'Wrong username or password, or the account is locked or disabled.',
    'auth.expired': 'Your session has ended. Please sign in again.',
    'auth.unreachable': 'The server cannot be reached.',
    'role.call_taker': 'Call taker',
    'role.dispatcher': 'Dispatcher',
    'role.supervisor': 'Supervisor',
    'role.field_unit': 'Field unit',
    'role.crew': 'Crew',
    'role.leader': 'Leader',
    'role.operator': 'Operator',
    'role.auditor': 'Auditor',
    'agency.police': 'Police',
    'agency.fire': 'Fire',
    'agency.ems': 'Medical',
    'agency.traffic': 'Traffic',
    'agency.hotline': '12345 Hotline',
    'agency.water': 'Water',
    'agency.gas': 'Gas',
    'agency.government': 'Government',
    'agency.command': 'Command centre',
  },
  zh: {
    'app.title': '城市指挥',
    'conn.connecting': '正在连接…',
    'conn.connected': '实时',
    'conn.reconnecting': '正在重连…',
    'conn.offline': '无法连接服务器',
    'map.title': '城市地图',
    'map.pending': '城市数据加载后在此显示地图。',
    'map.search': '搜索街道和地名…',
    'map.layers': '图层',
    'map.layer.roads': '道路',
    'map.layer.buildings': '建筑',
    'map.layer.water': '水系',
    'map.layer.labels': '注记',
    'map.layer.districts': '辖区',
    'map.district.fire': '消防辖区',
    'map.district.police': '派出所辖区',
    'map.district.ems': '急救分区',
    'map.district.admin': '行政区',
    'map.district.all': '全部辖区',
    'map.theme': '日间 / 夜间',
    'journal.title': '值班日志',
    'journal.kind.note': '记录',
    'journal.kind.handover': '交接班',
    'journal.kind.instruction': '指示',
    'journal.placeholder': '填写日志…',
    'journal.add': '添加',
    'journal.failed': '未保存：',
    'feed.title': '实时事件',
    'foot.offline': '完全离线运行。',
    'auth.title': '登录指挥中心',
    'auth.username': '用户名',
    'auth.password': '密码',
    'auth.submit': '登录',
    'auth.note': '所有操作均以您的名义记录。',
    'auth.logout': '退出登录',
    'auth.failed': '用户名或密码错误，或账号已锁定、已停用。',
    'auth.expired': '会话已结束，请重新登录。',
    'auth.unreachable': '无法连接服务器。',
    'role.call_taker': '接警员',
    'role.dispatcher': '调度员',
    'role.supervisor': '值班长',
    'role.field_unit': '外勤单位',
    'role.crew': '抢修班组',
    'role.leader': '领导',
    'role.operator': '运维管理员',
    'role.auditor': '审计员',
    'agency.police': '公安',
    'agency.fire': '消防',
    'agency.ems': '急救',
    'agency.traffic': '交警',
    'agency.hotline': '12345热线',
    'agency.water': '供水',
    'agency.gas': '燃气',
    'agency.government': '政府',
    'agency.command': '指挥中心',
  },
};

const browserLang = (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
let lang = localStorage.getItem('citycmd.lang') || browserLang;

export function t(key) {
  return (strings[lang] && strings[lang][key]) || strings.en[key] || key;
}

// A translated name when there is one (roles, agencies), else the raw value.
export function tName(prefix, value) {
  const key = `${prefix}.${value}`;
  const s = t(key);
  return s === key ? value : s;
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
