// English and 中文 for the teaching page: every element with data-i18n="key" gets its text from here.
export const STRINGS = {
  en: {
    title: "How diffusion works",
    subtitle: "the maths of DALL·E 2, computed live in this page",
    back: "← Generate",
    cosine: "cosine (Improved DDPM, unCLIP)",
    linear: "linear (DDPM)",
    "forward.title": "1. The forward process: adding noise",
    "forward.text": "Training data is destroyed step by step: at step t the image x₀ is scaled down and Gaussian noise ε is mixed in. ᾱ_t (“alpha bar”) is how much of the image is left; the schedule decides how fast it falls.",
    "forward.image": "Image",
    "forward.upload": "or your own",
    "forward.schedule": "Schedule",
    "forward.seed": "Noise seed",
    "forward.noise": "ε, the noise",
    "forward.strips": "The same image at t = 0, 100, …, 900, 999",
    "forward.plotAbar": "ᾱ_t: how much image is left",
    "forward.plotSnr": "log SNR: signal against noise",
    destroyed: (lin, cos) => `The signal falls below 1% of the noise power (SNR < 0.01) at t = ${lin} with the linear schedule and at t = ${cos} with the cosine one: the linear schedule wastes its last steps on pure noise.`,
    "reverse.title": "2. The reverse process: removing noise, live",
    "reverse.text": "The decoder is a network that looks at x_t and predicts the noise ε̂ in it; from ε̂ follows a guess of the clean image x̂₀, and a step towards it. DDPM adds fresh noise at every step; DDIM (η = 0) does not, so the same seed follows a different, deterministic path.",
    "reverse.prompt": "Prompt",
    "reverse.steps": "Decoder steps",
    "reverse.run": "Run DDPM and DDIM",
    "reverse.play": "Play",
    "guidance.title": "3. Classifier-free guidance",
    "guidance.text": "The decoder runs twice per step, with and without the text and image embedding, and pushes its prediction away from the unconditional one. Larger g follows the prompt more closely, at the cost of variety. The prior is guided the same way, with its own scale. (Prompt, seed and steps as in panel 2.)",
    "guidance.run": "Run the guidance scales",
    "guidance.decoder": "decoder g",
    "guidance.prior": "prior g (decoder g = 8)",
    "guidance.parts": "The three predictions at decoder step (g = 8)",
    "guidance.guided": "guided ε̂",
    lang: "中文",
  },
  zh: {
    title: "扩散模型是怎样工作的",
    subtitle: "DALL·E 2 的数学，在本页实时计算",
    back: "← 生成图像",
    cosine: "余弦（Improved DDPM，unCLIP）",
    linear: "线性（DDPM）",
    "forward.title": "1. 前向过程：加噪声",
    "forward.text": "训练图像被一步步破坏：在第 t 步，图像 x₀ 被缩小，并混入高斯噪声 ε。ᾱ_t（“alpha bar”）表示图像还剩下多少；噪声调度决定它下降的快慢。",
    "forward.image": "图像",
    "forward.upload": "或上传你自己的",
    "forward.schedule": "噪声调度",
    "forward.seed": "噪声种子",
    "forward.noise": "ε，噪声",
    "forward.strips": "同一图像在 t = 0, 100, …, 900, 999 时",
    "forward.plotAbar": "ᾱ_t：图像还剩多少",
    "forward.plotSnr": "log SNR：信号与噪声之比",
    destroyed: (lin, cos) => `信号功率降到噪声的 1% 以下（SNR < 0.01）：线性调度在 t = ${lin}，余弦调度在 t = ${cos}。线性调度把最后的步数浪费在纯噪声上。`,
    "reverse.title": "2. 反向过程：实时去噪",
    "reverse.text": "解码器是一个神经网络：它观察 x_t，预测其中的噪声 ε̂；由 ε̂ 得到对干净图像 x̂₀ 的估计，并朝它走一步。DDPM 每一步都加入新的噪声；DDIM（η = 0）不加，所以同一个种子会走出另一条确定的路径。",
    "reverse.prompt": "提示词",
    "reverse.steps": "解码器步数",
    "reverse.run": "运行 DDPM 和 DDIM",
    "reverse.play": "播放",
    "guidance.title": "3. 无分类器引导",
    "guidance.text": "解码器每一步运行两次：有和没有文本与图像嵌入；然后把预测推离无条件的那一个。g 越大，越贴近提示词，但多样性越少。先验模型也以同样方式引导，用它自己的强度。（提示词、种子和步数与第 2 部分相同。）",
    "guidance.run": "运行各引导强度",
    "guidance.decoder": "解码器 g",
    "guidance.prior": "先验 g（解码器 g = 8）",
    "guidance.parts": "解码器某一步的三个预测（g = 8）",
    "guidance.guided": "引导后的 ε̂",
    lang: "English",
  },
};

export function applyLanguage(lang) {
  const s = STRINGS[lang];
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) {
    const v = s[el.dataset.i18n];
    if (typeof v === "string") el.textContent = v;
  }
  document.getElementById("lang").textContent = s.lang;
}
