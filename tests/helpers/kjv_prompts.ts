// Prompts that quote King James verses to the tiny model (models/tiny-llama-kjv, a
// small chat model trained on the KJV): a conversation in which the assistant already
// recited the verse once and is asked the same again. Where the model knows the
// verse, it recites it again, and the text is in its context, so n-gram drafts from
// the prompt get accepted: John 3:18 (its answer to "Recite John 3:16", greedy: every
// draft accepted) and Genesis 1:1-3 (most); for the others it wanders off after a few
// words (few accepted). The speculative-decoding tests and benchmarks/spec_decode.ts
// use them.
export const KJV_VERSES: [string, string][] = [
  ['John 3:16', 'He that believeth on him is not condemned: but he that believeth not is condemned already, because he hath not believed in the name of the only begotten Son of God.'],
  ['Romans 6:23', 'For the wisdom of this world is foolishness with God. For it is written, He taketh the wise in their own craftiness.'],
  ['Matthew 5:3', 'And when he had thus spoken, he shewed them his hands and his feet.'],
  ['Isaiah 40:31', 'And the glory of the LORD shall be revealed, and all flesh shall see it together: for the mouth of the LORD hath spoken it.'],
  ['Exodus 32:7', 'And the LORD said unto Moses, Go, get thee down; for thy people, which thou broughtest out of the land of Egypt, have corrupted themselves:'],
  ['Genesis 1:1-3', 'In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there was light.'],
  ['Psalm 23:1-2', 'The LORD is my shepherd; I shall not want. He maketh me to lie down in green pastures: he leadeth me beside the still waters.'],
]

const turn = (role: string, text: string) => `<|im_start|>${role}\n${text}<|im_end|>\n`;

/** Per verse: "Recite X." answered with the verse, then "Recite X." once more, ready for the assistant's answer. */
export const KJV_PROMPTS: string[] = KJV_VERSES.map(
  ([ref, verse]) => `${turn('user', `Recite ${ref}.`)}${turn('assistant', verse)}${turn('user', `Recite ${ref}.`)}<|im_start|>assistant\n`,
);
